"""Helpers of bench/runtime.py (the runtime benchmark) and bench/profile_runtime.py."""
