"""The CEC codec against the reference's verified vectors (shared/reference/cec-t102-2016.md §6)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from protocols.cec import codec

KEY = "1234567890abcdef"
SECRETS = codec.Secrets(KEY, KEY, KEY)

V3_DATA = (
    "il7B0BSEjFdzpyKzfOFpvg/Se1CP802RItKYFPfSLRxJ3jf0bVl9hvYOEktPAYW2nd7S8MBcyHYyacHKbISq5iTmDzG+"
    "ivnR+SZJv3USNTYVMz9rCQVSxd0cLlqsJauko79NnwQJbzDTyLooYoIwz75qBOH2/xOMirpeEqRJrF/EQjWekJmGk9Rt"
    "boXePu2rka+Xm51syBPhiXJAq0GfbfaFu9tNqs/e2Vjja/ltE1M0lqvxfXQ6da6HrThsm5id4ClZFIi0acRfrsPLRixS"
    "/IQYtksxghvJwbqOsbIsITail9Ayy4tKcogeEZiOO+4Ed264NSKmk7l3wKwJLAFjCFogBx8GE3OBz4pqcAn/ydA="
)
# The OCR-damaged copy of V3 that circulates (O for 0, 1 for l, l for I ...).
V3_DAMAGED = (
    V3_DATA.replace("Jf0bVl9", "JfObV19").replace("YoIwz", "Yolwz").replace("ZFIi0", "ZFliO")
    .replace("OsbIsIT", "OsblsIT").replace("Kmk7l3w", "Kmk713w")
)
V5_DATA = (
    "0hRB5aTED8zKH9U+mZtzE9rhQ53h4LJP3q6VY4WGf5u/03lYhYK/rtF7kkZYm/chQkL9IN54mDFzA3qUJvWMnIEzfSCd"
    "zpebMYlk3ycl46MNaFd8pHvSdYrtn9OBanwY1F24AB+uY2WQf4VPq9q1iXsQUpZPIJoU1BcwiLPSU61oIMBHMsdQJXsb"
    "WsQE0gLa"
)
V6_DATA = (
    "U8wqzPK3T1yCE1KJv9krLZNPrvH0e0EAExnY5mB9Vt9wHiWTffYYmYj6K7z4yd20KtHRZYzW0EKnOuI6FWAzEo6CwPqU"
    "8WwOwzSpObAGmMFohl8T+w07ntTyiUU9N/FU5mHaW+c6FhmfXi+7o9SiOztY6riwned6+Q/ZKSOmAwm8k6wJr1Xj3Bqc"
    "DSFmhHpQ"
)
V7_DATA = "BmuQPtmtMfSqKqTPqiWVUAYFBN6VGfUH7INq04il+WN/cUIZr3iVlfJoY52ESRFUFDFUEWDloc6BqN8VSLMQug=="


def test_v3_appendix_signature_and_roundtrip():
    assert codec.sign("123456789" + V3_DATA + "20160729142400" + "0001", KEY) == (
        "745166E8C43C84D37FFEC0F529C4136F"
    )
    plain = codec.decrypt(V3_DATA, KEY, KEY)
    assert plain.startswith('{"total":1,"stationStatusInfo"')
    assert codec.encrypt(plain, KEY, KEY) == V3_DATA
    envelope = {"OperatorID": "123456789", "Data": V3_DATA, "TimeStamp": "20160729142400",
                "Seq": "0001", "Sig": "745166e8c43c84d37ffec0f529c4136f"}  # lower case accepted
    with pytest.raises(codec.CecError) as err:  # signature good, but the sample is not JSON
        codec.request_verify(envelope, SECRETS)
    assert err.value.ret == codec.RET_PARAMETER


def test_v3_damaged_copy_is_rejected():
    assert V3_DAMAGED != V3_DATA
    # (The reference quotes Sig 479B7C2F... for the copy it saw; the copy here is rebuilt
    # from the listed character swaps, so only "not the appendix Sig" is asserted.)
    assert codec.sign("123456789" + V3_DAMAGED + "20160729142400" + "0001", KEY) != (
        "745166E8C43C84D37FFEC0F529C4136F"
    )
    with pytest.raises(codec.CecError) as err:
        codec.decrypt(V3_DAMAGED, KEY, KEY)
    assert err.value.ret == codec.RET_PARAMETER
    envelope = {"OperatorID": "123456789", "Data": V3_DAMAGED, "TimeStamp": "20160729142400",
                "Seq": "0001", "Sig": "745166E8C43C84D37FFEC0F529C4136F"}
    with pytest.raises(codec.CecError) as err:
        codec.request_verify(envelope, SECRETS)
    assert err.value.ret == codec.RET_SIGNATURE


@pytest.mark.parametrize(
    ("data", "key", "iv", "expected"),
    [
        (V5_DATA, KEY, KEY, {"SuccStat": 0, "TokenAvailableTime": 1800,
                             "AccessToken": "EC1D89495D5F4DD93E580970A20502D0",
                             "OperatorID": "395815801", "FailReason": 0}),
        (V6_DATA, "2BMSzYtvC4pubJLy", "94bxWrkn4S0TB8FO",
         {"SuccStat": 0, "TokenAvailableTime": 1800, "AccessToken": "35ED1E952B9CF5E956DEEF26233ED178",
          "OperatorID": "395815801", "FailReason": 0}),
        (V7_DATA, KEY, KEY, {"OperatorSecret": "1234567890abcdef", "OperatorID": "MA1GUMG68"}),
    ],
)
def test_token_vectors_decrypt_and_roundtrip(data, key, iv, expected):
    plain = codec.decrypt(data, key, iv)
    assert json.loads(plain) == expected
    assert codec.encrypt(plain, key, iv) == data


def test_request_roundtrip_with_chinese_text_and_decimals():
    secrets = codec.Secrets("2BMSzYtvC4pubJLy", "94bxWrkn4S0TB8FO", "sig-secret-xyz")
    data = {"StationName": "深圳湾充电站", "ElecPrice": Decimal("0.6500"), "PageNo": 1}
    envelope = codec.request_build("MA1GUMG68", data, secrets, at=datetime(2026, 1, 2, 3, 4, 5))
    assert envelope["TimeStamp"] == "20260102030405"
    assert envelope["Sig"] == envelope["Sig"].upper() and len(envelope["Sig"]) == 32
    parsed = codec.envelope_parse(json.dumps(envelope))
    assert codec.request_verify(parsed, secrets) == data
    assert "0.6500" in codec.decrypt(envelope["Data"], secrets.data_secret, secrets.data_iv)
    tampered = dict(parsed, Seq="0002")
    with pytest.raises(codec.CecError) as err:
        codec.request_verify(tampered, secrets)
    assert err.value.ret == codec.RET_SIGNATURE


def test_response_roundtrip_and_signature():
    body = codec.response_build(0, "", {"Status": 0}, SECRETS)
    assert body["Sig"] == codec.sign("0" + body["Data"], KEY)
    assert codec.response_parse(json.dumps(body), SECRETS) == (0, "", {"Status": 0})
    bad = dict(body, Sig="0" * 32)
    with pytest.raises(codec.CecError) as err:
        codec.response_parse(json.dumps(bad), SECRETS)
    assert err.value.ret == codec.RET_SIGNATURE
    empty = codec.response_build(4002, "token", None, SECRETS)
    assert empty["Data"] == "" and codec.response_parse(json.dumps(empty), SECRETS) == (4002, "token", None)


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[1,2]", b'{"OperatorID":"1","Data":"x","TimeStamp":"1","Seq":"1"}',
             b'{"OperatorID":"1","Data":"","TimeStamp":"1","Seq":"1","Sig":"x"}',
             b'{"OperatorID":"1","Data":"x","TimeStamp":"1722","Seq":"1","Sig":"x"}'],
)
def test_bad_envelopes_are_4003(body):
    with pytest.raises(codec.CecError) as err:
        codec.envelope_parse(body)
    assert err.value.ret == codec.RET_ENVELOPE


@pytest.mark.parametrize("data", ["!!!notbase64", "AAAA", "QUJDREVGR0hJSktMTU5PUA=="])
def test_undecryptable_data_is_4004(data):
    with pytest.raises(codec.CecError) as err:
        codec.decrypt(data, KEY, KEY)
    assert err.value.ret == codec.RET_PARAMETER
