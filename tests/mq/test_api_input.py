"""Bad input gets a clear 4xx and writes nothing."""

from __future__ import annotations

from tests.mq.conftest import StartMq

LINE = {"sku": "apple", "quantity": 1}
BAD_BODIES = {
    "missing lines": {"order_id": "b1", "customer_id": "c"},
    "empty lines": {"order_id": "b1", "customer_id": "c", "lines": []},
    "zero quantity": {"order_id": "b1", "customer_id": "c", "lines": [{"sku": "apple", "quantity": 0}]},
    "negative quantity": {"order_id": "b1", "customer_id": "c", "lines": [{"sku": "apple", "quantity": -2}]},
    "string quantity": {"order_id": "b1", "customer_id": "c", "lines": [{"sku": "apple", "quantity": "2"}]},
    "float quantity": {"order_id": "b1", "customer_id": "c", "lines": [{"sku": "apple", "quantity": 1.5}]},
    "too many lines": {
        "order_id": "b1",
        "customer_id": "c",
        "lines": [{"sku": f"s{i}", "quantity": 1} for i in range(51)],
    },
    "repeated sku": {"order_id": "b1", "customer_id": "c", "lines": [LINE, LINE]},
    "bad order id": {"order_id": "../etc", "customer_id": "c", "lines": [LINE]},
    "unknown field": {"order_id": "b1", "customer_id": "c", "lines": [LINE], "price": 3},
    "lines not a list": {"order_id": "b1", "customer_id": "c", "lines": "apple"},
}


async def test_invalid_orders_are_4xx_and_write_nothing(start_mq: StartMq) -> None:
    mq = await start_mq()
    for name, body in BAD_BODIES.items():
        response = await mq.http.post("/orders", json=body)
        assert response.status_code == 422, f"{name}: {response.status_code} {response.text}"
        assert response.json()["detail"], name
    not_json = await mq.http.post("/orders", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 422
    huge = await mq.http.post(
        "/orders",
        content=b'{"order_id": "' + b"x" * 200_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert (await mq.http.get("/orders/nope")).status_code == 404
    assert (await mq.http.get("/stock/nope")).status_code == 404
    assert (await mq.http.put("/stock/apple", json={"quantity": -1})).status_code == 422
    assert await mq.scalar(mq.orders_db, "SELECT count(*) FROM t_order") == 0
    assert await mq.scalar(mq.orders_db, "SELECT count(*) FROM t_local_msg") == 0
