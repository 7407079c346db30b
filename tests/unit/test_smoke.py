from vyperp.units import to_wad


def test_open_long_values_position_at_mark(engine, lens, market, seeded_vault, deposit, trader, oracle, set_price):
    deposit(trader, 300_000)
    engine.modify_position(market, to_wad(10), to_wad(200_000), sender=trader)
    assert engine.open_positions(trader, 0, market).size == to_wad(10)
    set_price(oracle, 165_000)
    value = engine.position_value(trader, 0, market)
    assert value.unrealized_pnl > to_wad(149_000)
