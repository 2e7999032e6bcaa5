"""Batching policies, side by side: each turns a queue of requests into model calls and delivers the results.

Pure asyncio: no torch and no HTTP. The model arrives as a plain function (static) or a small engine protocol
(continuous), so every policy is unit-tested with fakes.
"""
