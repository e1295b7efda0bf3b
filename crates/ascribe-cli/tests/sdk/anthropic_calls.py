"""The official Anthropic SDK calling the gateway as an application would.

The SDK sends the caller key as `x-api-key` to `ASCRIBE_SDK_GATEWAY/v1/messages`; each
call prints one JSON line (see report.py) and checks the SDK's own objects.
"""

import anthropic
from anthropic.types import Message, TextBlock

from report import GATEWAY, KEY, ascribe_headers, check, report

MESSAGES = [{"role": "user", "content": "Which model answers this?"}]
SERVED = "claude-sonnet-4-5-20250929"

client = anthropic.Anthropic(base_url=GATEWAY, api_key=KEY, max_retries=0, timeout=20)


def messages_plain():
    decision = "sdk-messages"
    message = client.messages.create(
        model="claude",
        max_tokens=64,
        messages=MESSAGES,
        extra_headers={"Ascribe-Decision": decision},
    )
    check(isinstance(message, Message), f"{type(message)}")
    check(message.model == SERVED, message.model)
    check(message.role == "assistant" and message.stop_reason == "end_turn", f"{message}")
    check(isinstance(message.content[0], TextBlock), f"{message.content}")
    check(message.content[0].text == "<assistant text>", message.content[0].text)
    check(message.usage.input_tokens == 20 and message.usage.output_tokens == 10, "usage")
    report("messages", "claude", message.model, decision=decision)


def messages_raw():
    decision = "sdk-messages-raw"
    raw = client.messages.with_raw_response.create(
        model="claude",
        max_tokens=64,
        messages=MESSAGES,
        extra_headers={"Ascribe-Decision": decision},
    )
    message = raw.parse()
    check(isinstance(message, Message), f"{type(message)}")
    headers = ascribe_headers(raw.headers)
    check(len(headers) == 3, f"all three Ascribe headers: {dict(raw.headers)}")
    report("messages.raw", "claude", message.model, decision=decision, headers=headers)


def messages_stream():
    decision = "sdk-messages-stream"
    with client.messages.stream(
        model="claude",
        max_tokens=64,
        messages=MESSAGES,
        extra_headers={"Ascribe-Decision": decision},
    ) as stream:
        headers = ascribe_headers(stream.response.headers)
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    check(text == "<text>", text)
    check(isinstance(message, Message), f"{type(message)}")
    check(message.model == SERVED, message.model)
    check(message.content[0].text == "<text>", f"{message.content}")
    check(message.stop_reason == "end_turn", f"{message.stop_reason}")
    check(message.usage.output_tokens == 5, f"{message.usage}")
    check(len(headers) == 3, f"all three Ascribe headers: {dict(stream.response.headers)}")
    report("messages.stream", "claude", message.model, decision=decision, headers=headers)


def overloaded():
    decision = "sdk-messages-overloaded"
    try:
        client.messages.create(
            model="claude-overloaded",
            max_tokens=64,
            messages=MESSAGES,
            extra_headers={"Ascribe-Decision": decision},
        )
    except anthropic.OverloadedError as error:
        check(isinstance(error, anthropic.InternalServerError), f"{type(error).__mro__}")
        check(error.status_code == 529, f"{error.status_code}")
        check(error.body["error"]["type"] == "overloaded_error", f"{error.body}")
        headers = ascribe_headers(error.response.headers)
        report(
            "messages.overloaded",
            "claude-overloaded",
            decision=decision,
            headers=headers,
            error=type(error).__name__,
        )
        return
    check(False, "a 529 must raise OverloadedError")


def bad_key():
    stranger = anthropic.Anthropic(
        base_url=GATEWAY, api_key="asc_not_a_key", max_retries=0, timeout=20
    )
    try:
        stranger.messages.create(model="claude", max_tokens=64, messages=MESSAGES)
    except anthropic.AuthenticationError as error:
        check(error.status_code == 401, f"{error.status_code}")
        report("messages.bad_key", "claude", error=type(error).__name__)
        return
    check(False, "a bad key must raise AuthenticationError")


for call in (messages_plain, messages_raw, messages_stream, overloaded, bad_key):
    call()
