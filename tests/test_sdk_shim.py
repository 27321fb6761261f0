"""The SDK internals behind tools/sdk.py were checked against these versions only."""

from importlib import metadata

from tools import sdk


def test_the_installed_sdks_are_the_ones_the_shim_names():
    installed = {name: metadata.version(name) for name in sdk.PINNED}
    assert installed == sdk.PINNED, "an SDK upgrade must come through tools/sdk.py (see its docstring)"


def test_the_shim_exposes_what_the_harness_uses():
    assert sdk.SECRET_SIG and sdk.SIG_KEY and sdk.UNKNOWN
    assert callable(sdk.drain) and callable(sdk.track_outputs_per_run) and hasattr(sdk.AnalyzerServicer, "Analyze")
