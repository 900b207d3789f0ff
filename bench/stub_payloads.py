#!/usr/bin/env python3
"""Writes the fixed payloads of the benchmark stub upstream into a directory.

    python3 bench/stub_payloads.py OUT_DIR

OUT_DIR/converse.json   a Converse answer (one line, no `$` or `'`: it is inlined into
                        an nginx `return 200 '...'`)
OUT_DIR/stream.bin      a ConverseStream answer as AWS event-stream frames: messageStart,
                        3 contentBlockDelta, contentBlockStop, messageStop, metadata (usage)
OUT_DIR/request.json    the ~300-byte Converse request body the load generators send
OUT_DIR/chat.json       the same prompt as an OpenAI /chat/completions body (LiteLLM)

Event-stream frame: total_len u32 BE, headers_len u32 BE, prelude_crc u32 (CRC-32 of the
first 8 bytes), headers (name_len u8, name, type 7 = string, value_len u16 BE, value),
payload, message_crc u32 (CRC-32 of everything before it). CRC-32 is zlib's (IEEE).
The script decodes what it wrote and checks both CRCs before it exits.
"""

import json
import os
import struct
import sys
import zlib

PROMPT = (
    "Summarise the following note in one sentence: the quarterly infrastructure review found "
    "that most spend is on inference, that caching cut repeated prompts by a third, and that "
    "every call should carry a department tag."
)

ANSWER = (
    "Inference dominates infrastructure spend, caching removed a third of repeated prompts, "
    "and every call should now be tagged with its department."
)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def header(name, value):
    n = name.encode()
    v = value.encode()
    return struct.pack(">B", len(n)) + n + struct.pack(">BH", 7, len(v)) + v


def frame(event_type, payload):
    headers = (
        header(":event-type", event_type)
        + header(":content-type", "application/json")
        + header(":message-type", "event")
    )
    body = payload.encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    msg = prelude + headers + body
    return msg + struct.pack(">I", zlib.crc32(msg) & 0xFFFFFFFF)


def decode_all(data):
    """Decodes frames, checking lengths and CRCs; returns [(headers dict, payload)]."""
    out, i = [], 0
    while i < len(data):
        total, hlen, pcrc = struct.unpack(">III", data[i : i + 12])
        assert zlib.crc32(data[i : i + 8]) & 0xFFFFFFFF == pcrc, "prelude crc"
        msg = data[i : i + total]
        (mcrc,) = struct.unpack(">I", msg[-4:])
        assert zlib.crc32(msg[:-4]) & 0xFFFFFFFF == mcrc, "message crc"
        h, j, hdrs = msg[12 : 12 + hlen], 0, {}
        while j < len(h):
            nl = h[j]
            name = h[j + 1 : j + 1 + nl].decode()
            j += 1 + nl
            assert h[j] == 7
            (vl,) = struct.unpack(">H", h[j + 1 : j + 3])
            hdrs[name] = h[j + 3 : j + 3 + vl].decode()
            j += 3 + vl
        out.append((hdrs, msg[12 + hlen : -4]))
        i += total
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: stub_payloads.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    converse = {
        "metrics": {"latencyMs": 412},
        "output": {"message": {"content": [{"text": ANSWER}], "role": "assistant"}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 58, "outputTokens": 31, "totalTokens": 89},
    }
    cj = compact(converse)
    assert "$" not in cj and "'" not in cj and "\\" not in cj
    with open(os.path.join(out, "converse.json"), "w") as f:
        f.write(cj)

    words = ANSWER.split(" ")
    third = len(words) // 3
    parts = [" ".join(words[:third]) + " ", " ".join(words[third : 2 * third]) + " ", " ".join(words[2 * third :])]
    frames = [frame("messageStart", compact({"p": "abcdefghij", "role": "assistant"}))]
    for k, part in enumerate(parts):
        frames.append(
            frame(
                "contentBlockDelta",
                compact({"contentBlockIndex": 0, "delta": {"text": part}, "p": "abcdefghijklmnop"[: 4 + 3 * k]}),
            )
        )
    frames.append(frame("contentBlockStop", compact({"contentBlockIndex": 0, "p": "abcdefghi"})))
    frames.append(frame("messageStop", compact({"p": "abcdefghijklmn", "stopReason": "end_turn"})))
    frames.append(
        frame(
            "metadata",
            compact(
                {
                    "metrics": {"latencyMs": 388},
                    "p": "abcdefghijklmnopq",
                    "usage": {"inputTokens": 58, "outputTokens": 31, "totalTokens": 89},
                }
            ),
        )
    )
    stream = b"".join(frames)
    with open(os.path.join(out, "stream.bin"), "wb") as f:
        f.write(stream)

    decoded = decode_all(stream)
    kinds = [h[":event-type"] for h, _ in decoded]
    assert kinds == ["messageStart"] + ["contentBlockDelta"] * 3 + [
        "contentBlockStop",
        "messageStop",
        "metadata",
    ], kinds
    assert json.loads(decoded[-1][1])["usage"]["totalTokens"] == 89

    request = {
        "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
        "inferenceConfig": {"maxTokens": 256, "temperature": 0.2},
    }
    with open(os.path.join(out, "request.json"), "w") as f:
        f.write(compact(request))

    chat = {"model": "nova-lite", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 256, "temperature": 0.2}
    with open(os.path.join(out, "chat.json"), "w") as f:
        f.write(compact(chat))

    print(
        f"stub payloads in {out}: converse.json {len(cj)} B, stream.bin {len(stream)} B "
        f"({len(frames)} frames), request.json {len(compact(request))} B"
    )


if __name__ == "__main__":
    main()
