"""Dexscreener: ``GET /latest/dex/pairs/{chainId}/{pairAddresses}`` and ``/latest/dex/search?q=``.

Prices are strings; ``priceUsd``, ``liquidity``, ``volume.*``, ``fdv`` may be missing (null here).
About 300 requests per minute.

Pair addresses: an EVM address (``0x`` + hex) is the same address in any letter case, and
Dexscreener answers with the EIP-55 checksummed form whatever case was asked (a dexscreener.com
URL shows it lowercase), so hex addresses are matched case-insensitively. Any other address
(Solana's base58, where ``a`` and ``A`` are different digits) is matched exactly. A delivered pair
carries the address as it was asked for (``chainId/pairAddress`` as configured), so its rows key
on the configured pair whatever case the API answers in.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import polars as pl

from quant_assets.providers.base import DEX_SCHEMA, MalformedResponse
from quant_assets.providers.frames import optional_float, to_float
from quant_assets.providers.http import HttpProvider
from quant_assets.secrets import scrub

_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]+$")


def address_key(address: str) -> str:
    """The form two addresses are compared in: lowercase for hex (EVM), exact otherwise.

    Base58 has no ``0`` digit, so a base58 address never looks like ``0x...``.
    """
    address = address.strip()
    return address.lower() if _HEX_ADDRESS.match(address) else address


def parse_pairs(body: object) -> list[dict]:
    if not isinstance(body, dict) or "pairs" not in body:
        raise MalformedResponse("dexscreener body has no pairs")
    pairs = body["pairs"] or []
    if not isinstance(pairs, list):
        raise MalformedResponse("dexscreener pairs is not a list")
    out = []
    for pair in pairs:
        if not isinstance(pair, dict):
            raise MalformedResponse("dexscreener pair is not an object")
        txns = (pair.get("txns") or {}).get("h24") or {}
        out.append({  # text fields are stored: scrubbed like any text we keep
            "chain_id": scrub(str(pair["chainId"])),
            "pair_address": scrub(str(pair["pairAddress"])),
            "dex_id": scrub(str(pair.get("dexId") or "")),
            "base_symbol": scrub(str((pair.get("baseToken") or {}).get("symbol") or "")),
            "quote_symbol": scrub(str((pair.get("quoteToken") or {}).get("symbol") or "")),
            "price_native": to_float(pair.get("priceNative"), "priceNative"),
            "price_usd": optional_float(pair.get("priceUsd")),
            "liquidity_usd": optional_float((pair.get("liquidity") or {}).get("usd")),
            "volume_h24": optional_float((pair.get("volume") or {}).get("h24")),
            "fdv": optional_float(pair.get("fdv")),
            "txns_h24_buys": txns.get("buys") if isinstance(txns.get("buys"), int) else None,
            "txns_h24_sells": txns.get("sells") if isinstance(txns.get("sells"), int) else None,
        })
    return out


class DexscreenerProvider(HttpProvider):
    name = "dexscreener"
    rate_per_s = 300 / 60
    burst = 5.0

    def fetch_dex(self, pairs: Sequence[str]) -> pl.DataFrame:
        by_chain: dict[str, list[str]] = defaultdict(list)
        for pair in pairs:
            chain, _, address = pair.partition("/")
            by_chain[chain].append(address)
        rows: list[dict] = []
        for chain, addresses in by_chain.items():
            asked = {address_key(a): a for a in addresses}
            for i in range(0, len(addresses), 30):  # comma-separated list, up to 30 per call
                joined = ",".join(addresses[i : i + 30])
                for row in self.call(f"/latest/dex/pairs/{chain}/{joined}", parse=lambda body, _r: parse_pairs(body)):
                    if row["chain_id"] == chain:  # the address as configured, whatever case it came in
                        row["pair_address"] = asked.get(address_key(row["pair_address"]), row["pair_address"])
                    rows.append(row)
        return pl.DataFrame(rows, schema=DEX_SCHEMA)

    def search(self, query: str) -> pl.DataFrame:
        rows = self.call("/latest/dex/search", {"q": query}, parse=lambda body, _r: parse_pairs(body))
        return pl.DataFrame(rows, schema=DEX_SCHEMA)


