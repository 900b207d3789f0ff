"""boto3's bedrock-runtime client, unchanged but for the endpoint and the proxy's headers
(added through botocore's event hooks): invoke_model and
invoke_model_with_response_stream. Prints one JSON line per call with what the client
saw: the token counts from Bedrock's response headers or the stream's invocation metrics.

usage: boto3_invoke.py ENDPOINT_URL TRACKING_KEY AKID SECRET AGENT_PREFIX
"""
import json
import sys

import boto3
from botocore.config import Config

endpoint, key, akid, secret, agent = sys.argv[1:6]
model = "anthropic.claude-sonnet-4-5-20250929-v1:0"

client = boto3.client(
    "bedrock-runtime",
    region_name="us-east-1",
    endpoint_url=endpoint,
    aws_access_key_id="AKIDBOTOSIGNSITSELF1",
    aws_secret_access_key="boto-own-secret-never-used-by-the-proxy",
    config=Config(retries={"max_attempts": 1}),
)
current = {"agent": ""}


def add_proxy_headers(request, **_):
    request.headers["X-Cloudidr-Key"] = key
    request.headers["X-Aws-Access-Key-Id"] = akid
    request.headers["X-Aws-Secret-Access-Key"] = secret
    request.headers["X-Agent"] = current["agent"]


client.meta.events.register("before-sign.bedrock-runtime.*", add_proxy_headers)

body = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "say hi"}]}],
    }
)

current["agent"] = agent + "-invoke"
r = client.invoke_model(modelId=model, body=body, contentType="application/json", accept="application/json")
h = r["ResponseMetadata"]["HTTPHeaders"]
answer = json.loads(r["body"].read())
print(json.dumps({
    "agent": current["agent"],
    "text": answer["content"][0]["text"],
    "input": int(h["x-amzn-bedrock-input-token-count"]),
    "output": int(h["x-amzn-bedrock-output-token-count"]),
}))

current["agent"] = agent + "-stream"
r = client.invoke_model_with_response_stream(modelId=model, body=body, contentType="application/json")
text, metrics = "", {}
for event in r["body"]:
    e = json.loads(event["chunk"]["bytes"])
    if e["type"] == "content_block_delta":
        text += e["delta"]["text"]
    metrics = e.get("amazon-bedrock-invocationMetrics", metrics)
print(json.dumps({
    "agent": current["agent"],
    "text": text,
    "input": metrics["inputTokenCount"],
    "output": metrics["outputTokenCount"],
}))
