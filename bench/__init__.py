"""The portal-pulse benchmark suite: ``python -m bench`` (see docs/benchmarks.md).

Not part of the test run. Every figure is measured side by side with a bare aiohttp
ceiling and a naive Redis peer in the same run, on the same machine.
"""
