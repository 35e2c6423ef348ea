"""Execution: the Binance USD-M futures broker adapter (signed REST, user-data stream) and the order router."""

from hftops.execution.errors import BinanceCode, BrokerError, CredentialsError
from hftops.execution.ids import ClientOrderIds, new_session_id
from hftops.execution.layer import ExecutionLayer, build_execution
from hftops.execution.rest import BinanceFuturesRest
from hftops.execution.router import OrderRouter, ResyncReport
from hftops.execution.signing import Credentials, load_credentials, sign
from hftops.execution.user_stream import UserDataStream

__all__ = [
    "BinanceCode",
    "BinanceFuturesRest",
    "BrokerError",
    "ClientOrderIds",
    "Credentials",
    "CredentialsError",
    "ExecutionLayer",
    "OrderRouter",
    "ResyncReport",
    "UserDataStream",
    "build_execution",
    "load_credentials",
    "new_session_id",
    "sign",
]
