#!/usr/bin/env python3
"""Regenerates the built-in price table (src/pricing/builtin.toml) from public data sets.

    pip download --no-deps litellm && unzip -p litellm-*.whl \\
        litellm/model_prices_and_context_window_backup.json > litellm.json
    pip install genai-prices          # optional second source, cross-checked
    python3 src/pricing/gen_prices.py litellm.json --out src/pricing/builtin.toml

Reads LiteLLM's `model_prices_and_context_window_backup.json` (MIT) for the Bedrock chat
models: base prices, geo/global profile ids, `bedrock/<region>/<id>` regional prices,
priority/flex tiers, one-hour cache writes and the long-context rates. Adds the facts of
shared/reference/bedrock-pricing.md that the data set lacks (the 1.10 scope rule for
geo and in-region calls of the models it applies to, Nova cache writes at the input
price, Nova Pro's latency-optimized price, the long-context surcharge of Sonnet 4.6 and
Opus 4.6 before 2026-03-13, guardrail meters) and the dated price changes genai-prices
(MIT) records. Prints to stderr every figure on which the sources disagree, and which
one the table took. Standard library only (genai-prices is used when importable).
"""

import argparse
import datetime
import json
import re
import sys
from decimal import Decimal, ROUND_HALF_EVEN

CLASSES = ["input", "output", "cache_read", "cache_write_5m", "cache_write_1h"]
# LiteLLM field per class (USD per token).
LITELLM = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write_5m": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
}
GEO_PREFIXES = ["us", "eu", "apac", "jp", "au", "ca", "us-gov"]
# Source regions of each geographic profile (the regions a call through that profile
# starts from). Source: AWS user guide, "Supported Regions and models for inference
# profiles".
REGION_SETS = {
    "us": ["us-east-1", "us-east-2", "us-west-1", "us-west-2"],
    "eu": ["eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
           "eu-west-1", "eu-west-2", "eu-west-3"],
    "apac": ["ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
             "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
             "ap-southeast-4", "ap-southeast-5", "ap-southeast-7"],
    "jp": ["ap-northeast-1", "ap-northeast-3"],
    "au": ["ap-southeast-2", "ap-southeast-4"],
    "ca": ["ca-central-1", "ca-west-1"],
    "us-gov": ["us-gov-east-1", "us-gov-west-1"],
}
SET_NAME = {"us-gov": "gov"}
SET_KEY = {v: k for k, v in SET_NAME.items()}
REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$")
ID_RE = re.compile(r"^[a-z0-9-]+\.[A-Za-z0-9._:-]+$")
PREFIX_RE = re.compile(r"^(global|us-gov|us|eu|apac|jp|au|ca)\.(.+)$")
SCOPE_FACTOR = Decimal("1.1")   # geo and in-region vs global (reference)
TIER_FACTORS = {"priority": Decimal("1.75"), "flex": Decimal("0.5")}
MAX_DECIMALS = 9

disagreements = []


def note(model, what, took):
    disagreements.append(f"{model}: {what}; took {took}")


def per_million(usd_per_token):
    """A LiteLLM float (USD per token) as an exact decimal USD per 1M tokens."""
    if usd_per_token is None:
        return None
    d = Decimal(repr(float(usd_per_token))) * 1_000_000
    q = d.quantize(Decimal(1).scaleb(-MAX_DECIMALS), rounding=ROUND_HALF_EVEN)
    return q.normalize() if q != 0 else Decimal(0)


def fmt(d):
    s = format(d.normalize(), "f")
    return s


def figures(v, suffix=""):
    out = {}
    for c, f in LITELLM.items():
        if c == "cache_write_1h" and suffix:
            key = "cache_creation_input_token_cost_above_1hr" + suffix
        else:
            key = f + suffix
        if key in v:
            out[c] = per_million(v[key])
    return out


def long_threshold(v):
    ks = {int(m.group(1)) for k in v for m in [re.search(r"_above_(\d+)k_tokens$", k)] if m}
    return min(ks) * 1000 if ks else None


def scaled(figs, factor):
    return {c: (x * factor).normalize() for c, x in figs.items()}


def ratio(a, b):
    """a / b for every class both have, when it is one number; else None."""
    rs = {(a[c] / b[c]).normalize() for c in a if c in b and b[c] != 0}
    zero_mismatch = any(c in b and b[c] == 0 and a[c] != 0 for c in a)
    return rs.pop() if len(rs) == 1 and not zero_mismatch else None


def load_litellm(path):
    data = json.load(open(path))
    groups = {}
    for k, v in data.items():
        if not isinstance(v, dict) or v.get("mode") != "chat":
            continue
        if v.get("litellm_provider") not in ("bedrock", "bedrock_converse"):
            continue
        if "input_cost_per_token" not in v or "output_cost_per_token" not in v:
            continue
        region = None
        key = k
        if k.startswith("bedrock/"):
            parts = k.split("/")
            if len(parts) != 3 or not REGION_RE.match(parts[1]):
                continue
            region, key = parts[1], parts[2]
        elif "/" in k:
            continue
        if not ID_RE.match(key) or "@" in key:
            continue
        m = PREFIX_RE.match(key)
        prefix, base = (m.group(1), m.group(2)) if m else (None, key)
        g = groups.setdefault(base, {"bare": None, "prefix": {}, "region": {}})
        if region:
            g["region"].setdefault(region, v)
        elif prefix:
            g["prefix"][prefix] = v
        else:
            g["bare"] = v
    return groups


def load_genai():
    try:
        from genai_prices.data import providers
    except Exception as e:  # noqa: BLE001 - optional source
        print(f"genai-prices not importable ({e}); cross-check skipped", file=sys.stderr)
        return None
    return [p for p in providers if p.id == "aws"][0].models


def genai_match(models, ref):
    """The genai-prices model for a model reference: the same id, else its match clause."""
    if not models:
        return None
    for m in models:
        if m.id == ref:
            return m
    for m in models:
        if m.is_match(ref):
            return m
    return None


def genai_current(m):
    """A genai-prices model's price today (its last dated price, else its only one)."""
    return m.prices[-1].prices if isinstance(m.prices, list) else m.prices


def genai_figures(mp):
    """Base figures of a genai-prices ModelPrice (tiered prices: their base)."""
    def val(x):
        if x is None:
            return None
        return Decimal(str(getattr(x, "base", x))).normalize()
    out = {
        "input": val(mp.input_mtok),
        "output": val(mp.output_mtok),
        "cache_read": val(mp.cache_read_mtok),
        "cache_write_5m": val(mp.cache_write_mtok),
        "cache_write_1h": val(getattr(mp, "cache_write_1h_mtok", None)),
    }
    return {c: x for c, x in out.items() if x is not None}


def build(groups, genai):
    entries = {}
    for base in sorted(groups):
        g = groups[base]
        prefixes = g["prefix"]
        glob = prefixes.get("global")
        # The scope rule: a global profile exists and the geo/in-region price is 1.10x it.
        rule = False
        if glob is not None:
            gf = figures(glob)
            for p in GEO_PREFIXES:
                if p in prefixes and p != "us-gov" and ratio(figures(prefixes[p]), gf) == SCOPE_FACTOR:
                    rule = True
            reg = genai_match(genai, "us." + base)
            if reg is not None and reg.id.startswith("regional."):
                if ratio(genai_figures(genai_current(reg)), gf) == SCOPE_FACTOR:
                    rule = True
        if rule:
            src = glob
        else:
            src = g["bare"] or prefixes.get("us") or glob or next(iter(prefixes.values()), None)
        base_from_genai = None
        if src is None:
            # Only regional prices in LiteLLM: the base is genai-prices', else a
            # commercial region's, else GovCloud's.
            gm = genai_match(genai, base)
            if gm is not None:
                base_from_genai = genai_figures(genai_current(gm))
            regions = sorted(g["region"], key=lambda r: (r.startswith("us-gov-"), r != "us-east-1", r))
            src = g["region"][regions[0]]
            if base_from_genai is None:
                note(base, f"no base price; the {regions[0]} price is used as the base", regions[0])
        e = {"base": base_from_genai or figures(src), "factors": {}, "cards": [], "long": None}
        base_f = e["base"]
        # Nova: cache writes at the input price (reference).
        if base.startswith("amazon.nova") and "cache_write_5m" not in base_f:
            base_f["cache_write_5m"] = base_f["input"]
        if rule:
            e["factors"]["geo"] = SCOPE_FACTOR
            e["factors"]["in_region"] = SCOPE_FACTOR
            if g["bare"] is not None and figures(g["bare"]) != scaled(base_f, SCOPE_FACTOR):
                note(base, f"LiteLLM prices the bare in-region id at {fmt(figures(g['bare'])['input'])} input, "
                     f"the reference's scope rule gives {fmt(base_f['input'] * SCOPE_FACTOR)}", "the scope rule")
        # Tiers.
        tiers_seen = False
        for tier, expect in TIER_FACTORS.items():
            tf = figures(src, "_" + tier)
            if not tf:
                continue
            tiers_seen = True
            r = ratio(tf, base_f)
            if r is not None and r.as_tuple().exponent < -4:
                r = None  # not a factor a price file can state exactly: explicit card
            if r is not None and all(c in tf for c in ("input", "output")):
                e["factors"][tier] = r
                if r != expect:
                    note(base, f"{tier} is {fmt(r)}x, the usual factor is {fmt(expect)}x", "the data set")
            else:
                e["cards"].append({"tier": tier, **tf})
        if tiers_seen:
            e["factors"]["reserved"] = Decimal(0)
        # Long context.
        t = long_threshold(src)
        if t:
            lf = figures(src, f"_above_{t // 1000}k_tokens")
            e["long"] = t
            per = {c: (lf[c] / base_f[c]).normalize() for c in lf if c in base_f and base_f[c] != 0}
            if per:
                e["factors"]["long"] = per
        # Other profiles and regions, for models without the scope rule.
        for p, v in sorted(prefixes.items()):
            if p == "global" and rule:
                continue
            pf = figures(v)
            want = scaled(base_f, SCOPE_FACTOR) if rule else base_f
            if p == "global" and not rule:
                if pf != {c: base_f[c] for c in pf if c in base_f}:
                    e["cards"].append({"scope": "global", **pf})
                continue
            if all(base_f.get(c) is not None and want[c] == pf[c] for c in pf):
                continue
            card = {"regions": SET_NAME.get(p, p), **pf}
            if rule:
                card["scope"] = ["geo", "in_region"]
            if p == "us-gov":
                card["unconfirmed"] = True
            e["cards"].append(card)
        for r, v in sorted(g["region"].items()):
            rf = figures(v)
            gov = r.startswith("us-gov-")
            # What the table gives this region without a card of its own.
            want = scaled(base_f, SCOPE_FACTOR) if rule else base_f
            for c in e["cards"]:
                if isinstance(c.get("regions"), str) and r in REGION_SETS[SET_KEY.get(c["regions"], c["regions"])]:
                    want = {k: x for k, x in c.items() if k in CLASSES}
            extra = {"unconfirmed": True} if gov else {}
            if any(want.get(c) != rf[c] for c in rf):
                card = {"regions": [r], **rf, **extra}
                if rule:
                    card["scope"] = ["geo", "in_region"]
                e["cards"].append(card)
            for tier in TIER_FACTORS:
                tf = figures(v, "_" + tier)
                f = e["factors"].get(tier)
                if tf and (f is None or any(c in rf and tf[c] != (rf[c] * f).normalize() for c in tf)):
                    e["cards"].append({"regions": [r], "tier": tier, **tf, **extra})
        entries[base] = e
    return entries


def add_reference_facts(entries):
    """Facts of shared/reference/bedrock-pricing.md that the data sets lack."""
    # Nova: cache writes at the input price, reads at 25 % of it, on every regional card.
    for model, e in entries.items():
        if not model.startswith("amazon.nova"):
            continue
        for card in e["cards"]:
            if "regions" in card and "input" in card and "latency" not in card and "tier" not in card:
                card.setdefault("cache_read", (card["input"] * Decimal("0.25")).normalize())
                card.setdefault("cache_write_5m", card["input"])
    nova = entries.get("amazon.nova-pro-v1:0")
    if nova:
        # Latency-optimized Nova Pro in the US: 1.00 / 4.00 instead of 0.80 / 3.20 (cache
        # prices of the optimized mode are not known: such tokens stay unpriced).
        nova["cards"].append({"latency": "optimized", "regions": "us",
                              "input": Decimal("1"), "output": Decimal("4")})
        # eu-south-1 is dearer than the EU profile price.
        nova["cards"].append({"regions": ["eu-south-1"], "input": Decimal("1.28"), "output": Decimal("5.21"),
                              "cache_read": Decimal("0.32"), "cache_write_5m": Decimal("1.28")})
    for model in ("anthropic.claude-sonnet-4-6", "anthropic.claude-opus-4-6-v1"):
        e = entries.get(model)
        if not e:
            continue
        # The 1M-context surcharge (2x input and cache, 1.5x output) ended on 2026-03-13.
        e["long"] = 200000
        b = e["base"]
        card = {"long_context": True, "until": "2026-03-13"}
        for c in CLASSES:
            if c in b:
                card[c] = (b[c] * (Decimal("1.5") if c == "output" else 2)).normalize()
        e["cards"].append(card)


def add_dated_prices(entries, genai):
    """genai-prices' dated price changes: a card for the old price, until the change."""
    for m in genai or []:
        if not isinstance(m.prices, list):
            continue
        gid = m.id
        mm = re.match(r"^(global|regional)\.(.+)$", gid)
        base = mm.group(2) if mm else gid
        e = entries.get(base)
        if not e:
            continue
        dated = [p for p in m.prices if p.constraint is not None and hasattr(p.constraint, "start_date")]
        first = [p for p in m.prices if p.constraint is None]
        if not dated or not first:
            continue
        start = dated[-1].constraint.start_date.isoformat()
        old = genai_figures(first[0].prices)
        new = genai_figures(dated[-1].prices)
        scope = "global" if gid.startswith("global.") else ["geo", "in_region"]
        rule = "geo" in e["factors"]
        cur = scaled(e["base"], SCOPE_FACTOR) if rule and scope != "global" else e["base"]
        if cur.get("input") != new.get("input"):
            note(base, f"genai-prices' price from {start} ({fmt(new['input'])} input) differs from LiteLLM "
                 f"({fmt(cur.get('input', Decimal(0)))})", "LiteLLM")
        card = {"until": start, **old}
        if rule:
            card["scope"] = scope
        e["cards"].append(card)


def derived(e, scope):
    """An entry's default-tier price for a scope in us-east-1 (what the Rust table gives)."""
    f = e["base"]
    if scope != "global" and scope in e["factors"]:
        f = scaled(f, e["factors"][scope])
    return f


def cross_check(entries, genai):
    """Every genai-prices figure against the table; genai-only models are added."""
    if not genai:
        return
    for m in genai:
        mm = re.match(r"^(global|regional)\.(.+)$", m.id)
        kind, base = (mm.group(1), mm.group(2)) if mm else ("bare", m.id)
        refs = {"global": "global." + base, "regional": "us." + base, "bare": base}
        ref = refs[kind]
        e = None
        for key in entries:
            if (("global." + key) if kind == "global" else ("us." + key) if kind == "regional" else key) == ref:
                e = entries[key]
        if e is None:
            for key in sorted(entries):
                probe = ("global." + key) if kind == "global" else ("us." + key) if kind == "regional" else key
                if m.is_match(probe):
                    e = entries[key]
                    break
        theirs = genai_figures(genai_current(m))
        if e is None:
            if "input" in theirs and "output" in theirs and base not in entries:
                note(base, f"only in genai-prices ({m.id})", "genai-prices")
                e = {"base": theirs, "factors": {}, "cards": [], "long": None}
                if kind == "global":
                    reg = genai_match(genai, "us." + base)
                    if reg is not None and reg.id.startswith("regional."):
                        r = ratio(genai_figures(genai_current(reg)), theirs)
                        if r is not None:
                            e["factors"]["geo"] = r
                            e["factors"]["in_region"] = r
                entries[base] = e
            continue
        scope = {"global": "global", "regional": "geo", "bare": "in_region"}[kind]
        ours = derived(e, scope)
        for c, x in theirs.items():
            if c in ours and ours[c] != x:
                note(base, f"{scope} {c} {fmt(ours[c])} (table) vs {fmt(x)} (genai-prices {m.id})", "the table")
            elif c not in ours:
                note(base, f"{c} {fmt(x)} only in genai-prices ({m.id})", "nothing (not added)")


def toml_value(k, v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return f'"{fmt(v)}"'
    if isinstance(v, list):
        return "[" + ", ".join(f'"{x}"' for x in v) + "]"
    if k == "regions":
        return f'["{v}"]'
    return f'"{v}"'


def write(entries, source_note, out):
    today = datetime.date.today().isoformat()
    lines = [
        "# Built-in Bedrock on-demand text-model prices, USD per 1M tokens (decimal strings).",
        "# Generated by src/pricing/gen_prices.py; do not edit by hand, regenerate:",
        f"#   {source_note}",
        "# Sources: LiteLLM model_prices_and_context_window_backup.json (MIT), genai-prices (MIT),",
        "# and shared/reference/bedrock-pricing.md (AWS user guides). Figures marked",
        "# `unconfirmed` (GovCloud) are from one data set only. Verify against the AWS Bedrock",
        "# pricing page before relying on a figure; override any entry with --pricing FILE.",
        "",
        "[meta]",
        f'version = "builtin-{today}"',
        'source = "LiteLLM backup JSON + genai-prices + shared/reference/bedrock-pricing.md"',
        f'date = "{today}"',
        "",
        "[regions]",
    ]
    for p, regions in REGION_SETS.items():
        lines.append(f'{SET_NAME.get(p, p)} = [{", ".join(chr(34) + r + chr(34) for r in regions)}]')
    lines += [
        "",
        "# Guardrail text units, USD per 1,000 units (AWS pricing page via LiteLLM; image",
        "# filters 0.75 and automated reasoning 0.17 are not confirmed, so not listed:",
        "# such units leave a row unpriced until a [meters] line is added).",
        "[meters]",
        'guardrail_content_policy = "0.15"',
        'guardrail_topic_policy = "0.15"',
        'guardrail_sensitive_information_policy = "0.10"',
        'guardrail_contextual_grounding_policy = "0.10"',
        'guardrail_word_policy = "0"',
        'guardrail_sensitive_information_policy_free = "0"',
    ]
    for model in sorted(entries):
        e = entries[model]
        lines += ["", f'[models."{model}"]']
        for c in CLASSES:
            if c in e["base"]:
                lines.append(f"{c} = {toml_value(c, e['base'][c])}")
        if e["long"]:
            lines.append(f"long_context_above = {e['long']}")
        if e["factors"]:
            parts = []
            order = ["global", "geo", "in_region", "priority", "flex", "reserved", "optimized", "long"]
            for k in order:
                if k not in e["factors"]:
                    continue
                v = e["factors"][k]
                if isinstance(v, dict):
                    inner = ", ".join(f'{c} = "{fmt(x)}"' for c, x in v.items())
                    parts.append(f"{k} = {{ {inner} }}")
                else:
                    parts.append(f'{k} = "{fmt(v)}"')
            lines.append("factors = { " + ", ".join(parts) + " }")
        for card in e["cards"]:
            lines.append(f'[[models."{model}".card]]')
            for k in ["scope", "regions", "tier", "latency", "long_context", "from", "until", "unconfirmed"] + CLASSES:
                if k in card:
                    lines.append(f"{k} = {toml_value(k, card[k])}")
    out.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("litellm", help="LiteLLM's model_prices_and_context_window_backup.json")
    ap.add_argument("--out", help="where to write the TOML (default: stdout)")
    a = ap.parse_args()
    groups = load_litellm(a.litellm)
    genai = load_genai()
    entries = build(groups, genai)
    add_reference_facts(entries)
    add_dated_prices(entries, genai)
    cross_check(entries, genai)
    note_cmd = "python3 src/pricing/gen_prices.py litellm.json --out src/pricing/builtin.toml"
    if a.out:
        with open(a.out, "w") as f:
            write(entries, note_cmd, f)
    else:
        write(entries, note_cmd, sys.stdout)
    print(f"{len(entries)} models; {len(disagreements)} disagreements between sources:", file=sys.stderr)
    for d in disagreements:
        print("  " + d, file=sys.stderr)


if __name__ == "__main__":
    main()
