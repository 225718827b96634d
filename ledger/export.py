"""Journal export as JSON lines: every entry with its postings and hashes, verifiable offline.

One object per line: ``seq, key, cmd, body, business_date, result_data, prev_hash, hash,
postings`` (``[[account, currency, amount_minor], ...]`` in idx order) — exactly the fields the hash
covers, so ``ledger.verify.verify_journal_file`` re-derives the chain without the database.
Reads only.
"""

from __future__ import annotations

from typing import TextIO

from sqlalchemy import Engine

from ledger.chain import canonical_json


def export_journal(engine: Engine, out: TextIO) -> int:
    n = 0
    with engine.connect() as conn:
        posts = iter(
            conn.exec_driver_sql(
                "SELECT entry_seq, account, currency, amount_minor FROM ledger_postings "
                "ORDER BY entry_seq, idx"
            ).all()
        )
        nxt = next(posts, None)
        for seq, key, cmd, body, bdate, rdata, prev_hash, h in conn.exec_driver_sql(
            "SELECT seq, key, cmd, body, business_date, result_data, prev_hash, hash FROM ledger_journal "
            "ORDER BY seq"
        ):
            legs = []
            while nxt is not None and nxt[0] == seq:
                legs.append([nxt[1], nxt[2], int(nxt[3])])
                nxt = next(posts, None)
            out.write(
                canonical_json(
                    {
                        "seq": int(seq),
                        "key": key,
                        "cmd": cmd,
                        "body": body,
                        "business_date": bdate if isinstance(bdate, str) else bdate.isoformat(),
                        "result_data": rdata,
                        "prev_hash": prev_hash,
                        "hash": h,
                        "postings": legs,
                    }
                )
                + "\n"
            )
            n += 1
    return n
