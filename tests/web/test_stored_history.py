"""The dashboard's history read back from the persister's tables, as the persister wrote them."""

from __future__ import annotations

from common.domain import Fill, Order, Position, RiskState, Side
from common.dynamo import Dynamo
from common.dynamo.history import daily_pnl_snapshots, fills_of_day
from common.dynamo.rows import fill_row, order_row
from common.dynamo.tables import TableNames, create_tables, make_client
from common.events import fill_event, order_event
from common.settings import load_settings

DAY_MS = 1_796_428_800_000  # 2026-12-05T00:00:00Z


def test_fills_of_a_day_come_back_in_time_order_in_dora_units(moto_endpoint: str) -> None:
    settings = load_settings({"DORA_DYNAMODB_ENDPOINT": moto_endpoint}, read_file=False)
    create_tables(make_client(settings), TableNames.from_prefix(settings.table_prefix))
    db = Dynamo.from_settings(settings)
    position = Position("T-1")
    rows = []
    for i, (side, price) in enumerate([(Side.BID, 4_500), (Side.BID, 4_600), (Side.ASK, 4_900)]):
        ts_ms = DAY_MS + 60_000 * (i + 1)
        fill = Fill(f"f{i}", f"o{i}", "T-1", side, price, 250, 1_000, False, ts_ms)
        position = position.apply_fill(fill)
        rows.append((db.names.trade_log, fill_row(fill_event(fill, position))))
        order = Order("T-1", side, price, 250, f"c{i}", f"o{i}")
        rows.append((db.names.trade_log, order_row(order_event(order, "placed", ts_ms))))
    # an order event logged ``filled`` (a cancel that found it executed) is no fill to chart
    done = Order("T-1", Side.BID, 4_500, 250, "c0", "o0")
    rows.append((db.names.trade_log, order_row(order_event(done, "filled", DAY_MS + 90_000))))
    other_day = Fill("f9", "o9", "T-1", Side.BID, 4_000, 100, 0, False, DAY_MS - 1)
    rows.append((db.names.trade_log, fill_row(fill_event(other_day, position))))
    db.logs.write(reversed(rows))  # stored in any order, read back in time order
    fills = fills_of_day(db.client, db.names, "2026-12-05")
    assert [f.ts_ms for f in fills] == sorted(f.ts_ms for f in fills) and len(fills) == 3
    assert [(f.ticker, f.position_after) for f in fills] == [
        ("T-1", 250),
        ("T-1", 500),
        ("T-1", 250),
    ]
    assert fills[-1].realized_pnl_after == position.realized_pnl  # exact, through the dollars
    assert fills_of_day(db.client, db.names, "2026-12-06") == []
    assert len(fills_of_day(db.client, db.names, "2026-12-05", max_rows=2)) < 3  # bounded


def test_past_days_pnl_from_the_stored_snapshots(moto_endpoint: str) -> None:
    settings = load_settings({"DORA_DYNAMODB_ENDPOINT": moto_endpoint}, read_file=False)
    create_tables(make_client(settings), TableNames.from_prefix(settings.table_prefix))
    db = Dynamo.from_settings(settings)
    for day, pnl in (("2026-12-02", -5_000_000), ("2026-12-04", 12_345_678), ("2026-12-05", 1)):
        db.state.put_pnl_snapshot(RiskState(day=day, daily_pnl=pnl, fees=10), DAY_MS)
    past = daily_pnl_snapshots(db.state, "2026-12-05", 7)
    assert [(p["day"], p["daily_pnl"], p["fees"]) for p in past] == [
        ("2026-12-02", -5_000_000, 10),
        ("2026-12-04", 12_345_678, 10),
    ]
