"""DynamoDB Streams: changes to the catalog table are replicated to a second table.

The step inserts three items, updates one and deletes another through the
DynamoDB API; the stream adapter reads the table's stream (shard walk, lease,
checkpoint) and the Replicator applies every change, in order per item, to the
replica. The step waits for its five reports, then shows both tables equal.
"""

from __future__ import annotations

from typing import Any

from . import DemoContext

TITLE = "DynamoDB Streams (table -> replicator -> replica table)"
ORDER = 70

SOURCE, REPLICA = "demo-CatalogTable", "demo-CatalogReplica"


async def _items(ddb: Any, table: str) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    args: dict[str, Any] = {"TableName": table}
    while True:
        page = await ddb.scan(**args)
        items.update({item["sku"]["S"]: item for item in page["Items"]})
        if "LastEvaluatedKey" not in page:
            return items
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def run(ctx: DemoContext) -> None:
    async with ctx.client("dynamodb") as ddb:
        for sku, name, price in [("A-1", "kettle", "25"), ("B-2", "teapot", "18"),
                                 ("C-3", "cups", "9")]:  # fmt: skip
            item = {"sku": {"S": sku}, "name": {"S": name}, "price": {"N": price}}
            await ddb.put_item(TableName=SOURCE, Item=item)
        await ddb.update_item(
            TableName=SOURCE, Key={"sku": {"S": "B-2"}},
            UpdateExpression="SET price = :p", ExpressionAttributeValues={":p": {"N": "15"}},
        )  # fmt: skip
        await ddb.delete_item(TableName=SOURCE, Key={"sku": {"S": "C-3"}})
        ctx.row("Replicator", f"3 puts, 1 update, 1 delete on {SOURCE}", "written")
        await ctx.reports({"Replicator"}, expected=5)
        source, replica = await _items(ddb, SOURCE), await _items(ddb, REPLICA)
    same = "equal" if source == replica else "DIFFERENT"
    ctx.row("Replicator", f"{REPLICA} vs {SOURCE}", f"{same}: {sorted(replica)}")
