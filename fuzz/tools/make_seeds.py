#!/usr/bin/env python3
"""Writes the committed seed inputs in fuzz/seeds/<target>/ (run from anywhere).

Layouts are documented at the top of fuzz/src/props.rs. Re-running rewrites the same files.
"""
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "seeds")
FIXTURES = os.path.join(os.path.dirname(ROOT), "tests", "fixtures", "eventstream")


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- request_head ------------------------------------------------------------------------
CONVERSE = b'{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}'
heads = {
    "converse_post": b"POST /bedrock/model/amazon.nova-lite-v1%3A0/converse HTTP/1.1\r\nHost: localhost:8080\r\n"
    b"Content-Type: application/json\r\nX-Llmops-Tags: team=eng,app=demo\r\nContent-Length: "
    + str(len(CONVERSE)).encode() + b"\r\n\r\n" + CONVERSE,
    "converse_stream_chunked": b"POST /bedrock/model/anthropic.claude-sonnet-4-6/converse-stream?region=eu-west-1 HTTP/1.1\r\n"
    b"Host: proxy\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: keep-alive\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    "get_http10": b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "leading_crlf_pipelined": b"\r\nGET /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /health HTTP/1.1\r\nHost: a\r\n\r\n",
    "connection_close_tokens": b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade,  CLOSE \r\nX-Empty:\r\n\r\n",
    "smuggle_cl_te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "smuggle_dup_cl": b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "smuggle_te_list": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    "smuggle_te_http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "smuggle_obs_fold": b"POST / HTTP/1.1\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "smuggle_bare_lf": b"POST / HTTP/1.1\nHost: a\nContent-Length: 0\n\n",
    "smuggle_nul": b"POST / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
    "smuggle_dup_host": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "absolute_form": b"POST http://bedrock-runtime.us-east-1.amazonaws.com/ HTTP/1.1\r\n\r\n",
    "cl_spaces_plus": b"POST / HTTP/1.1\r\nContent-Length:  +12 \r\n\r\n",
    "cl_max_digits": b"POST / HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n",
    "partial": b"POST /bedrock/model/x/converse HTTP/1.1\r\nHost: a\r\nContent-Le",
}
for name, data in heads.items():
    write("request_head", name, data)

# --- chunked_body: [split][max] body --------------------------------------------------
chunked = {
    "two_chunks_ext_trailer": b"\x80\xff" + b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET /next",
    "converse_json": b"\x33\xff" + b"%x\r\n" % len(CONVERSE) + CONVERSE + b"\r\n0\r\n\r\n",
    "upper_hex_bws": b"\x50\xff" + b"A \t;x\r\n0123456789\r\n0\r\n\r\n",
    "over_limit": b"\x10\x02" + b"10\r\n0123456789abcdef\r\n0\r\n\r\n",
    "size_overflow": b"\x40\xff" + b"ffffffffffffffff0\r\n",
    "empty": b"\x00\xff" + b"0\r\n\r\n",
    "bare_lf": b"\xc0\xff" + b"5\nhello\r\n0\r\n\r\n",
    "missing_crlf_after_data": b"\x20\xff" + b"5\r\nhelloX\r\n0\r\n\r\n",
    "trailer_bare_lf": b"\x90\xff" + b"0\r\nX: y\n\r\n",
    "partial": b"\x70\xff" + b"1f4\r\npartial data only",
}
for name, data in chunked.items():
    write("chunked_body", name, data)


# --- eventstream: [flags][split] stream ---------------------------------------------
def frame(headers, payload):
    head = b""
    for name, value in headers:
        n = name.encode()
        v = value.encode()
        head += bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(head) + len(payload) + 4
    pre = struct.pack(">II", total, len(head))
    pre += struct.pack(">I", zlib.crc32(pre))
    body = pre + head + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(kind, payload):
    return frame([(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")], payload)


stream = (
    event("messageStart", b'{"role":"assistant"}')
    + event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"Hello"}}')
    + event("contentBlockStop", b'{"contentBlockIndex":0}')
    + event("messageStop", b'{"stopReason":"end_turn"}')
    + event("metadata", b'{"usage":{"inputTokens":12,"outputTokens":34,"totalTokens":46},"metrics":{"latencyMs":321}}')
)
exception = frame(
    [(":exception-type", "throttlingException"), (":content-type", "application/json"), (":message-type", "exception")],
    b'{"message":"Too many requests"}',
)
error = frame([(":message-type", "error"), (":error-code", "InternalFailure"), (":error-message", "boom")], b"")
write("eventstream", "bedrock_stream", b"\x00\x80" + stream)
write("eventstream", "bedrock_stream_cut", b"\x00\x33" + stream[:-7])
write("eventstream", "bedrock_exception", b"\x00\x10" + event("messageStart", b"{}") + exception)
write("eventstream", "error_frame_fixcrc", b"\x01\xc0" + error)
write("eventstream", "random_clamped", b"\x03\x44" + bytes(range(7, 200, 3)) * 2)
for name in sorted(os.listdir(FIXTURES)):
    if name.startswith(("valid_", "invalid_")):
        with open(os.path.join(FIXTURES, name), "rb") as f:
            write("eventstream", "fixture_" + name, b"\x00\x80" + f.read())

# --- usage_scan ------------------------------------------------------------------------
usage = {
    "converse_full": b'{"metrics":{"latencyMs":321},"output":{"message":{"content":[{"text":"hi"}],"role":"assistant"}},'
    b'"stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":34,"totalTokens":46,'
    b'"cacheReadInputTokens":5,"cacheWriteInputTokens":0}}',
    "odd_types": b'{"usage":{"outputTokens":"7","inputTokens":-3,"totalTokens":1.5,"cacheReadInputTokens":null},'
    b'"metrics":[],"stopReason":42}',
    "huge_numbers": b'{"usage":{"inputTokens":18446744073709551615,"outputTokens":9223372036854775807,'
    b'"totalTokens":-9223372036854775808,"cacheWriteInputTokens":1e308}}',
    "stream_metadata": b'{"usage":{"inputTokens":3,"outputTokens":5,"totalTokens":8},"metrics":{"latencyMs":99}}',
    "long_unicode_stop": ('{"stopReason":"' + "\u00e9\u2713\\u00e9\\ud83d\\ude00" * 40 + '"}').encode(),
    "duplicate_keys": b'{"usage":{"inputTokens":1,"inputTokens":2},"usage":{"outputTokens":3}}',
    "not_object": b"[1,2,3]",
    "truncated": b'{"usage":{"inputTokens":12,"outputTok',
    "deep": b'{"a":' * 64 + b"1" + b"}" * 64,
    "whitespace_bom": b'\xef\xbb\xbf \n\t{"usage" : { "inputTokens" : 1 } }\n',
}
for name, data in usage.items():
    write("usage_scan", name, data)

# --- model_region: raw model segment \n region ------------------------------------------
models = {
    "nova_escaped": "amazon.nova-lite-v1%3A0\nus-east-1",
    "claude_gov": "anthropic.claude-sonnet-4-6\nus-gov-west-1",
    "arn_profile": "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.x\neu-west-3",
    "llama_apac": "meta.llama3-1-8b-instruct-v1:0\nap-southeast-2",
    "prefixed": "global.anthropic.claude-sonnet-4-6\nil-central-10",
    "dot_dot_escaped": "%2E%2E\neu-west-1",
    "dot_segment": "a/../b\nus-east-1.evil.com",
    "bad_escape": "a%2\nus-gov--1",
    "space_escape": "a%20b\nUS-EAST-1",
    "query_hash": "x?y#z\nus-east-1@evil",
    "trailing_dot_slash": "anthropic.x/.\nca-central-1",
    "empty": "\n",
}
for name, data in models.items():
    write("model_region", name, data)

# --- sigv4_canonical: [flags] method \n target \n region \n time \n headers... ----------
sig = {
    "bedrock_converse": b"\x03POST\n/model/amazon.nova-lite-v1%3A0/converse\nus-east-1\n1440938160\n"
    b"Host:bedrock-runtime.us-east-1.amazonaws.com\nX-Amz-Date:20150830T123600Z\nContent-Type:application/json",
    "aws_suite_query": b"\x00GET\n/?Param2=value2&Param1=value1\nus-east-1\n1440938160\n"
    b"Host:example.amazonaws.com\nX-Amz-Date:20150830T123600Z",
    "dot_segments": b"\x01GET\n//example//..//./a/b/../c/.\nus-east-1\n1440938160\nHost:example.amazonaws.com",
    "utf8_and_bad_escapes": b"\x02GET\n/%E1%88%B4/\xe1\x88\xb4?%E1%88%B4=x&b=%zz&a&=&&c=%2\nus-west-2\n0\nHost:h",
    "folded_values": b"\x03POST\n/a%zz/b c\nus-east-1\n-62135596801\nMy-Header1:  a   b \r c \n"
    b"my-header1:value2\nHost:x\nX-Amz-Security-Token:tok",
    "max_time": b"\x01GET\n/\nus-east-1\n9223372036854775807\nHost:x",
    "min_time": b"\x02GET\n/\nus-east-1\n-9223372036854775808\nHost:x",
    "bad_header_name": b"\x03GET\n/\nus-east-1\nx\nBad Name:x\nHost:y",
    "no_slash": b"\x00GET\nrelative/../path\nus-east-1\n1\n",
}
for name, data in sig.items():
    write("sigv4_canonical", name, data)
