"""ctypes prototypes for the libiec61850 that the `pyiec61850-ng` wheel bundles.

Why ctypes rather than the wheel's SWIG layer: SWIG offers no Python write-access handler (settings could not be
validated), and its calls keep the GIL while they block in C. The C server thread needs the GIL to run our
handlers, so a SWIG call waiting on the data-model lock, or a SWIG client in the same process, deadlocks until a
timeout. ctypes releases the GIL for every foreign call and turns Python callables into C callbacks.
"""

from __future__ import annotations

import ctypes
from enum import IntEnum
from functools import cache
from typing import Any

vp = ctypes.c_void_p
_int = ctypes.c_int
_str = ctypes.c_char_p
_bool = ctypes.c_bool


class Fc(IntEnum):
    """FunctionalConstraint (iec61850_common.h)."""

    ST = 0
    MX = 1
    SP = 2
    SV = 3
    CF = 4
    DC = 5
    SG = 6
    SE = 7
    SR = 8
    OR = 9
    BL = 10
    EX = 11
    CO = 12


class AddCause(IntEnum):
    """ControlAddCause: IEC 61850-7-2 AddCause values as libiec61850 numbers them."""

    UNKNOWN = 0
    NOT_SUPPORTED = 1
    SELECT_FAILED = 3
    BLOCKED_BY_MODE = 8
    OBJECT_NOT_SELECTED = 18
    NONE = 25
    INCONSISTENT_PARAMETERS = 26


class AccessError(IntEnum):
    """MmsDataAccessError: what a refused MMS write answers."""

    SUCCESS = -1
    TEMPORARILY_UNAVAILABLE = 2
    OBJECT_ACCESS_DENIED = 3
    TYPE_INCONSISTENT = 7
    OBJECT_VALUE_INVALID = 11


class CheckResult(IntEnum):
    """CheckHandlerResult of a select or operate check."""

    ACCEPTED = -1
    OBJECT_ACCESS_DENIED = 3
    VALUE_INVALID = 11


class ControlResult(IntEnum):
    FAILED = 0
    OK = 1


class ClientError(IntEnum):
    """IedClientError values the client distinguishes."""

    OK = 0
    CONNECTION_LOST = 3
    ACCESS_DENIED = 21
    OBJECT_DOES_NOT_EXIST = 22
    OBJECT_VALUE_INVALID = 32


class AttrType(IntEnum):
    """DataAttributeType (only the members the model uses)."""

    BOOLEAN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    INT8U = 6
    INT16U = 7
    INT32U = 9
    FLOAT32 = 10
    FLOAT64 = 11
    ENUMERATED = 12
    OCTET_STRING_64 = 13
    VISIBLE_STRING_32 = 16
    VISIBLE_STRING_64 = 17
    VISIBLE_STRING_65 = 18
    VISIBLE_STRING_129 = 19
    VISIBLE_STRING_255 = 20
    UNICODE_STRING_255 = 21
    TIMESTAMP = 22
    QUALITY = 23
    CHECK = 24
    CODEDENUM = 25
    CONSTRUCTED = 27


class NodeType(IntEnum):
    LOGICAL_DEVICE = 0
    LOGICAL_NODE = 1
    DATA_OBJECT = 2
    DATA_ATTRIBUTE = 3


class LastApplError(ctypes.Structure):
    _fields_ = (("ctl_num", _int), ("error", _int), ("add_cause", _int))


#: C callback types: write access, perform check, control (operate).
WRITE_HANDLER = ctypes.CFUNCTYPE(_int, vp, vp, vp, vp)
CHECK_HANDLER = ctypes.CFUNCTYPE(_int, vp, vp, vp, _bool, _bool)
CONTROL_HANDLER = ctypes.CFUNCTYPE(_int, vp, vp, vp, _bool)

_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    # dynamic model
    "IedModel_create": (vp, [_str]),
    "IedModel_destroy": (None, [vp]),
    "LogicalDevice_create": (vp, [_str, vp]),
    "LogicalNode_create": (vp, [_str, vp]),
    "IedModel_getModelNodeByObjectReference": (vp, [vp, _str]),
    "ModelNode_getChildCount": (_int, [vp]),
    "ModelNode_getChildWithIdx": (vp, [vp, _int]),
    "ModelNode_getName": (_str, [vp]),
    "ModelNode_getType": (_int, [vp]),
    "DataAttribute_getType": (_int, [vp]),
    "DataAttribute_getFC": (_int, [vp]),
    "CDC_SPS_create": (vp, [_str, vp, ctypes.c_uint32]),
    "CDC_INS_create": (vp, [_str, vp, ctypes.c_uint32]),
    "CDC_ENS_create": (vp, [_str, vp, ctypes.c_uint32]),
    "CDC_VSS_create": (vp, [_str, vp, ctypes.c_uint32]),
    "CDC_MV_create": (vp, [_str, vp, ctypes.c_uint32, _bool]),
    "CDC_WYE_create": (vp, [_str, vp, ctypes.c_uint32]),
    "CDC_LPL_create": (vp, [_str, vp, ctypes.c_uint32]),
    "CDC_DPL_create": (vp, [_str, vp, ctypes.c_uint32]),
    "CDC_ASG_create": (vp, [_str, vp, ctypes.c_uint32, _bool]),
    "CDC_SPG_create": (vp, [_str, vp, ctypes.c_uint32]),
    "CDC_SPC_create": (vp, [_str, vp, ctypes.c_uint32, ctypes.c_uint32]),
    "CDC_DPC_create": (vp, [_str, vp, ctypes.c_uint32, ctypes.c_uint32]),
    "CDC_APC_create": (vp, [_str, vp, ctypes.c_uint32, ctypes.c_uint32, _bool]),
    # server
    "IedServer_create": (vp, [vp]),
    "IedServer_destroy": (None, [vp]),
    "IedServer_setLocalIpAddress": (None, [vp, _str]),
    "IedServer_start": (None, [vp, _int]),
    "IedServer_stop": (None, [vp]),
    "IedServer_isRunning": (_bool, [vp]),
    "IedServer_getNumberOfOpenConnections": (_int, [vp]),
    "IedServer_lockDataModel": (None, [vp]),
    "IedServer_unlockDataModel": (None, [vp]),
    "IedServer_updateFloatAttributeValue": (None, [vp, vp, ctypes.c_float]),
    "IedServer_updateInt32AttributeValue": (None, [vp, vp, ctypes.c_int32]),
    "IedServer_updateBooleanAttributeValue": (None, [vp, vp, _bool]),
    "IedServer_updateVisibleStringAttributeValue": (None, [vp, vp, _str]),
    "IedServer_updateUTCTimeAttributeValue": (None, [vp, vp, ctypes.c_uint64]),
    "IedServer_updateQuality": (None, [vp, vp, ctypes.c_uint16]),
    "IedServer_updateDbposValue": (None, [vp, vp, _int]),
    "IedServer_handleWriteAccess": (None, [vp, vp, vp, vp]),
    "IedServer_setWriteAccessPolicy": (None, [vp, _int, _int]),
    "IedServer_setPerformCheckHandler": (None, [vp, vp, vp, vp]),
    "IedServer_setControlHandler": (None, [vp, vp, vp, vp]),
    "ControlAction_setAddCause": (None, [vp, _int]),
    "ControlAction_isSelect": (_bool, [vp]),
    "ControlAction_getClientConnection": (vp, [vp]),
    "ClientConnection_getPeerAddress": (_str, [vp]),
    # values
    "MmsValue_getType": (_int, [vp]),
    "MmsValue_toFloat": (ctypes.c_float, [vp]),
    "MmsValue_toInt32": (ctypes.c_int32, [vp]),
    "MmsValue_getBoolean": (_bool, [vp]),
    "MmsValue_getElement": (vp, [vp, _int]),
    "MmsValue_getBitStringAsInteger": (ctypes.c_uint32, [vp]),
    "MmsValue_toString": (_str, [vp]),
    "MmsValue_newFloat": (vp, [ctypes.c_float]),
    "MmsValue_newBoolean": (vp, [_bool]),
    "MmsValue_newBitString": (vp, [_int]),
    "MmsValue_setBitStringFromInteger": (None, [vp, ctypes.c_uint32]),
    "MmsValue_createEmptyStructure": (vp, [_int]),
    "MmsValue_setElement": (None, [vp, _int, vp]),
    "MmsValue_delete": (None, [vp]),
    # client
    "IedConnection_create": (vp, []),
    "IedConnection_destroy": (None, [vp]),
    "IedConnection_setRequestTimeout": (None, [vp, ctypes.c_uint32]),
    "IedConnection_connect": (None, [vp, ctypes.POINTER(_int), _str, _int]),
    "IedConnection_close": (None, [vp]),
    "IedConnection_readObject": (vp, [vp, ctypes.POINTER(_int), _str, _int]),
    "IedConnection_writeObject": (None, [vp, ctypes.POINTER(_int), _str, _int, vp]),
    "ControlObjectClient_create": (vp, [_str, vp]),
    "ControlObjectClient_destroy": (None, [vp]),
    "ControlObjectClient_getControlModel": (_int, [vp]),
    "ControlObjectClient_setOrigin": (None, [vp, _str, _int]),
    "ControlObjectClient_select": (_bool, [vp]),
    "ControlObjectClient_selectWithValue": (_bool, [vp, vp]),
    "ControlObjectClient_operate": (_bool, [vp, vp, ctypes.c_uint64]),
    "ControlObjectClient_getLastError": (_int, [vp]),
    "ControlObjectClient_getLastApplError": (LastApplError, [vp]),
}


@cache
def lib() -> ctypes.CDLL:
    """The bundled libiec61850, reached through the binding's extension module (which links it), prototyped."""
    try:
        from pyiec61850 import _pyiec61850
    except ImportError as exc:
        raise ImportError(
            "IEC 61850 needs the optional libiec61850 binding: pip install 'der-gateway[iec61850]'"
        ) from exc

    handle = ctypes.CDLL(_pyiec61850.__file__)
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(handle, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return handle


def version() -> str:
    """libiec61850's version string, for diagnostics."""
    from pyiec61850 import pyiec61850 as swig

    return str(swig.LibIEC61850_getVersionString())
