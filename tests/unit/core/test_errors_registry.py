from __future__ import annotations

import pytest

from imgrec.errors import (
    ConfigError,
    DatasetError,
    DependencyError,
    ImgrecError,
    InvalidImageError,
    MissingInputError,
    OutputError,
    UnknownNameError,
    did_you_mean,
    require,
)
from imgrec.registry import Registry


@pytest.mark.parametrize(
    ("cls", "builtin", "exit_code"),
    [
        (ConfigError, ValueError, 2),
        (UnknownNameError, KeyError, 2),
        (MissingInputError, FileNotFoundError, 66),
        (InvalidImageError, ValueError, 65),
        (DatasetError, ValueError, 65),
        (OutputError, OSError, 73),
        (DependencyError, ImportError, 1),
    ],
)
def test_every_error_is_also_a_builtin_with_an_exit_code(cls, builtin, exit_code):
    err = cls("boom")
    assert isinstance(err, ImgrecError) and isinstance(err, builtin)
    assert err.exit_code == exit_code
    assert str(err) == "boom"


def test_registry_unknown_name_suggests_close_matches():
    reg: Registry[int] = Registry("model")
    reg.add("resnet18", 1)
    reg.add("resnet50", 2)
    with pytest.raises(UnknownNameError) as info:
        reg.get("resnet19")
    assert "resnet18" in str(info.value) and "Did you mean" in str(info.value)
    assert reg.names("resnet*") == ["resnet18", "resnet50"]
    with pytest.raises(ValueError):
        reg.add("resnet18", 3)


def test_did_you_mean_is_empty_without_candidates():
    assert did_you_mean("zzz", ["alpha", "beta"]) == ""


def test_require_names_the_extra():
    with pytest.raises(DependencyError, match=r"imgrec\[torch\]"):
        require("imgrec_no_such_module", "torch")
