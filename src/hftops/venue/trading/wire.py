"""Binance USD-M futures JSON shapes of orders, trades, account, positions and user-data events.

Decimal strings as Binance writes them: prices and quantities with the symbol's precision, money with 8
decimals. The admin ground truth uses the same order and trade shapes, so tests compare like with like.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hftops.venue.symbols import SymbolSpec
from hftops.venue.trading.account import ZERO, Account
from hftops.venue.trading.model import ExecType, Fill, Order, OrderType, Side, Status, TimeInForce

MAX_NOTIONAL = "1000000000"


def money(value: Decimal) -> str:
    return f"{value:.8f}"


def price_text(spec: SymbolSpec, value: Decimal) -> str:
    return f"{value:.{spec.price_decimals}f}"


def avg_price(order: Order, spec: SymbolSpec) -> Decimal:
    if not order.executed:
        return ZERO
    return order.cum_quote / Decimal(order.executed).scaleb(-spec.qty_decimals)


def order_json(order: Order, spec: SymbolSpec) -> dict[str, Any]:
    return {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status.value,
        "clientOrderId": order.client_id,
        "price": spec.price_text(order.price).decode(),
        "avgPrice": price_text(spec, avg_price(order, spec)),
        "origQty": spec.qty_text(order.qty).decode(),
        "executedQty": spec.qty_text(order.executed).decode(),
        "cumQty": spec.qty_text(order.executed).decode(),
        "cumQuote": money(order.cum_quote),
        "timeInForce": order.tif.value,
        "type": order.type.value,
        "origType": order.type.value,
        "reduceOnly": order.reduce_only,
        "closePosition": False,
        "side": order.side.value,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "time": order.time_ms,
        "updateTime": order.update_ms,
    }


def order_from_json(record: dict[str, Any], spec: SymbolSpec) -> Order:
    """The inverse of `order_json` (journal replay at start)."""
    return Order(
        order_id=int(record["orderId"]),
        client_id=str(record["clientOrderId"]),
        symbol=spec.symbol,
        side=Side(record["side"]),
        type=OrderType(record["type"]),
        tif=TimeInForce(record["timeInForce"]),
        qty=units(record["origQty"], spec.qty_decimals),
        price=units(record["price"], spec.price_decimals),
        reduce_only=bool(record["reduceOnly"]),
        time_ms=int(record["time"]),
        status=Status(record["status"]),
        executed=units(record["executedQty"], spec.qty_decimals),
        cum_quote=Decimal(record["cumQuote"]),
        update_ms=int(record["updateTime"]),
    )


def units(text: str, decimals: int) -> int:
    return int(Decimal(text).scaleb(decimals))


def trade_json(fill: Fill, spec: SymbolSpec) -> dict[str, Any]:
    return {
        "buyer": fill.side is Side.BUY,
        "commission": money(fill.commission),
        "commissionAsset": spec.quote_asset,
        "id": fill.trade_id,
        "maker": fill.maker,
        "orderId": fill.order_id,
        "clientOrderId": fill.client_id,  # not in Binance's userTrades; kept for the venue's ground truth
        "price": spec.price_text(fill.price).decode(),
        "qty": spec.qty_text(fill.qty).decode(),
        "quoteQty": money(fill.quote_qty),
        "realizedPnl": money(fill.realized_pnl),
        "side": fill.side.value,
        "positionSide": "BOTH",
        "symbol": fill.symbol,
        "time": fill.time_ms,
    }


def fill_from_json(record: dict[str, Any], spec: SymbolSpec) -> Fill:
    return Fill(
        trade_id=int(record["id"]),
        order_id=int(record["orderId"]),
        client_id=str(record.get("clientOrderId", "")),
        symbol=spec.symbol,
        side=Side(record["side"]),
        price=units(record["price"], spec.price_decimals),
        qty=units(record["qty"], spec.qty_decimals),
        quote_qty=Decimal(record["quoteQty"]),
        commission=Decimal(record["commission"]),
        realized_pnl=Decimal(record["realizedPnl"]),
        maker=bool(record["maker"]),
        time_ms=int(record["time"]),
    )


def order_update(order: Order, spec: SymbolSpec, exec_type: ExecType, fill: Fill | None, now_ms: int) -> dict[str, Any]:
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "o": {
            "s": order.symbol,
            "c": order.client_id,
            "S": order.side.value,
            "o": order.type.value,
            "f": order.tif.value,
            "q": spec.qty_text(order.qty).decode(),
            "p": spec.price_text(order.price).decode(),
            "ap": price_text(spec, avg_price(order, spec)),
            "sp": "0",
            "x": exec_type.value,
            "X": order.status.value,
            "i": order.order_id,
            "l": spec.qty_text(fill.qty if fill else 0).decode(),
            "z": spec.qty_text(order.executed).decode(),
            "L": spec.price_text(fill.price if fill else 0).decode(),
            "N": spec.quote_asset,
            "n": money(fill.commission if fill else ZERO),
            "T": fill.time_ms if fill else now_ms,
            "t": fill.trade_id if fill else 0,
            "b": money(ZERO),
            "a": money(ZERO),
            "m": fill.maker if fill else False,
            "R": order.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": order.type.value,
            "ps": "BOTH",
            "cp": False,
            "rp": money(fill.realized_pnl if fill else ZERO),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
        },
    }


def account_update(account: Account, symbol: str, reason: str, now_ms: int) -> dict[str, Any]:
    spec, pos = account.specs[symbol], account.positions[symbol]
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "a": {
            "m": reason,
            "B": [{"a": spec.quote_asset, "wb": money(account.wallet), "cw": money(account.wallet), "bc": "0"}],
            "P": [
                {
                    "s": symbol,
                    "pa": spec.qty_text(pos.qty).decode(),
                    "ep": money(pos.entry),
                    "bep": money(pos.entry),
                    "cr": money(pos.realized),
                    "up": money(account.unrealized(symbol)),
                    "mt": "cross",
                    "iw": "0",
                    "ps": "BOTH",
                }
            ],
        },
    }


def position_risk(account: Account, symbol: str, drift: Decimal, now_ms: int) -> dict[str, Any]:
    spec, pos = account.specs[symbol], account.positions[symbol]
    amount = account.qty(symbol, pos.qty) + drift
    mark = account.mark(symbol)
    return {
        "symbol": symbol,
        "positionAmt": f"{amount:.{spec.qty_decimals}f}",
        "entryPrice": money(pos.entry),
        "breakEvenPrice": money(pos.entry),
        "markPrice": money(mark),
        "unRealizedProfit": money(account.unrealized(symbol)),
        "liquidationPrice": "0",
        "leverage": str(account.leverage_of(symbol)),
        "maxNotionalValue": MAX_NOTIONAL,
        "marginType": "cross",
        "isolatedMargin": "0.00000000",
        "isAutoAddMargin": "false",
        "positionSide": "BOTH",
        "notional": money(amount * mark),
        "isolatedWallet": "0",
        "updateTime": pos.update_ms or now_ms,
    }


def account_json(account: Account, open_orders: list[Order], drift: dict[str, Decimal], now_ms: int) -> dict[str, Any]:
    t = account.totals(open_orders)
    asset = {
        "asset": "USDT",
        "walletBalance": money(t["wallet"]),
        "unrealizedProfit": money(t["unrealized"]),
        "marginBalance": money(t["margin_balance"]),
        "maintMargin": money(t["maint_margin"]),
        "initialMargin": money(t["initial_margin"]),
        "positionInitialMargin": money(t["position_im"]),
        "openOrderInitialMargin": money(t["order_im"]),
        "crossWalletBalance": money(t["wallet"]),
        "crossUnPnl": money(t["unrealized"]),
        "availableBalance": money(t["available"]),
        "maxWithdrawAmount": money(max(ZERO, t["available"])),
        "marginAvailable": True,
        "updateTime": account.update_ms,
    }
    positions = []
    for symbol, spec in account.specs.items():
        pos = account.positions[symbol]
        amount = account.qty(symbol, pos.qty) + drift.get(symbol, ZERO)
        orders_im = sum((account.order_margin(o) for o in open_orders if o.symbol == symbol), ZERO)
        positions.append(
            {
                "symbol": symbol,
                "initialMargin": money(account.position_margin(symbol) + orders_im),
                "maintMargin": money(account.maint_margin(symbol)),
                "unrealizedProfit": money(account.unrealized(symbol)),
                "positionInitialMargin": money(account.position_margin(symbol)),
                "openOrderInitialMargin": money(orders_im),
                "leverage": str(account.leverage_of(symbol)),
                "isolated": False,
                "entryPrice": money(pos.entry),
                "breakEvenPrice": money(pos.entry),
                "maxNotional": MAX_NOTIONAL,
                "bidNotional": "0",
                "askNotional": "0",
                "positionSide": "BOTH",
                "positionAmt": f"{amount:.{spec.qty_decimals}f}",
                "notional": money(amount * account.mark(symbol)),
                "isolatedWallet": "0",
                "updateTime": pos.update_ms,
            }
        )
    return {
        "feeTier": 0,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "feeBurn": False,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        "updateTime": now_ms,
        "totalInitialMargin": asset["initialMargin"],
        "totalMaintMargin": asset["maintMargin"],
        "totalWalletBalance": asset["walletBalance"],
        "totalUnrealizedProfit": asset["unrealizedProfit"],
        "totalMarginBalance": asset["marginBalance"],
        "totalPositionInitialMargin": asset["positionInitialMargin"],
        "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
        "totalCrossWalletBalance": asset["walletBalance"],
        "totalCrossUnPnl": asset["unrealizedProfit"],
        "availableBalance": asset["availableBalance"],
        "maxWithdrawAmount": asset["maxWithdrawAmount"],
        "assets": [asset],
        "positions": positions,
    }
