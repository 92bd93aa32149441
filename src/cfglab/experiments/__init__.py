"""Experiments that combine layers: measurements that use theory, studies, sweep task functions."""
