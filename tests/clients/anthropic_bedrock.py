"""The Anthropic Python SDK's Bedrock client, unchanged but for the base URL and the
proxy's headers: one Messages call, one streamed, each with its own X-Agent so the test
finds its row. Prints one JSON line per call with the usage the SDK parsed.

usage: anthropic_bedrock.py BASE_URL TRACKING_KEY AKID SECRET AGENT_PREFIX
"""
import json
import sys

from anthropic import AnthropicBedrock

base_url, key, akid, secret, agent = sys.argv[1:6]
model = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def client(suffix):
    return AnthropicBedrock(
        # The SDK signs with these; the proxy drops that signature and signs again.
        aws_access_key="AKIDSDKSIGNSITSELF01",
        aws_secret_key="sdk-own-secret-never-used-by-the-proxy",
        aws_region="us-east-1",
        base_url=base_url,
        max_retries=0,
        default_headers={
            "X-Cloudidr-Key": key,
            "X-Aws-Access-Key-Id": akid,
            "X-Aws-Secret-Access-Key": secret,
            "X-Agent": agent + suffix,
        },
    )


def usage_of(u):
    return {
        "input": u.input_tokens,
        "output": u.output_tokens,
        "cache_read": u.cache_read_input_tokens,
        "cache_write": u.cache_creation_input_tokens,
    }


messages = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "a long system-like preamble", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "text", "text": "say hi"},
        ],
    }
]
msg = client("-create").messages.create(model=model, max_tokens=64, messages=messages)
print(json.dumps({"agent": agent + "-create", "text": msg.content[0].text, "stop": msg.stop_reason, **usage_of(msg.usage)}))

with client("-stream").messages.stream(model=model, max_tokens=64, messages=messages) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
print(json.dumps({"agent": agent + "-stream", "text": text, "stop": final.stop_reason, **usage_of(final.usage)}))
