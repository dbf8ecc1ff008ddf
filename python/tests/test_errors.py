from __future__ import annotations

import pickle

import pytest

import stan_client
from stan_client import _native, errors

TIMEOUT_CODES = {"CONNECT_TIMEOUT", "REQUEST_TIMEOUT", "PUBLISH_ACK_TIMEOUT"}


def test_every_core_error_kind_maps_to_its_own_class() -> None:
    codes = _native._error_kind_codes()
    assert len(codes) == len(set(codes)) >= 11
    classes: set[type[errors.StanError]] = set()
    for code in codes:
        err = _native._error_for_code(code, f"message for {code}")
        cls = type(err)
        assert cls is not errors.StanError, f"{code} has no class of its own"
        assert issubclass(cls, errors.StanError)
        assert cls.code == code
        assert err.code == code
        assert errors.BY_CODE[code] is cls
        assert str(err) == f"message for {code}"
        assert err.message == f"message for {code}"
        # the core error's source becomes __cause__
        assert isinstance(err.__cause__, Exception)
        assert str(err.__cause__) == "underlying cause"
        assert isinstance(err, TimeoutError) == (code in TIMEOUT_CODES)
        classes.add(cls)
    assert len(classes) == len(codes)


def test_unknown_code_is_invalid_argument() -> None:
    with pytest.raises(stan_client.InvalidArgumentError):
        _native._error_for_code("NO_SUCH_KIND", "x")


@pytest.mark.parametrize("code", _native._error_kind_codes())
def test_errors_pickle(code: str) -> None:
    err = _native._error_for_code(code, "pickled")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert back.code == code
    assert str(back) == "pickled"


def test_hierarchy() -> None:
    assert issubclass(errors.ConnectTimeoutError, errors.StanTimeoutError)
    assert issubclass(errors.PublishAckTimeoutError, TimeoutError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert not issubclass(errors.ServerRejectedError, TimeoutError)
    generic = errors.StanError("x", code="SOMETHING_NEW")
    assert generic.code == "SOMETHING_NEW"
    back = pickle.loads(pickle.dumps(generic))
    assert back.code == "SOMETHING_NEW"
    assert errors.PanicError("p").code == "PANIC"
    assert pickle.loads(pickle.dumps(errors.PanicError("p"))).code == "PANIC"


def test_sync_panic_is_an_exception_not_an_abort() -> None:
    with pytest.raises(BaseException, match="boom") as info:
        _native._panic_blocking("boom")
    assert type(info.value).__name__ == "PanicException"


async def test_async_panic_is_panic_error() -> None:
    with pytest.raises(stan_client.PanicError, match="boom") as info:
        await _native._panic_async("boom")
    assert info.value.code == "PANIC"
    fut = _native._panic_async("")
    await fut
    assert fut.exception() is None  # the runtime still works
