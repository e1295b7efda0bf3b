"""The official OpenAI SDK calling the gateway as an application would.

Every call goes to `ASCRIBE_SDK_GATEWAY/v1` with a caller key in place of an OpenAI key;
each prints one JSON line (see report.py), and each checks that the SDK handed back its
normal objects, so a gateway that changed an answer's shape fails here.
"""

import openai
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseTextDeltaEvent,
)

from report import GATEWAY, KEY, ascribe_headers, check, report

MESSAGES = [{"role": "user", "content": "Which model answers this?"}]

client = openai.OpenAI(base_url=f"{GATEWAY}/v1", api_key=KEY, max_retries=0, timeout=20)


def chat_plain():
    """A plain call: the decision reference travels in the body's metadata."""
    decision = "sdk-chat"
    completion = client.chat.completions.create(
        model="v1", messages=MESSAGES, metadata={"ascribe_decision": decision}
    )
    check(isinstance(completion, ChatCompletion), f"{type(completion)}")
    check(completion.model == "gpt-4o-2024-08-06", completion.model)
    check(completion.system_fingerprint == "fp_898ac29719", f"{completion.system_fingerprint}")
    check(completion.choices[0].message.content == "<assistant text>", f"{completion}")
    check(completion.choices[0].finish_reason == "stop", f"{completion}")
    check(completion.usage is not None and completion.usage.total_tokens == 32, f"{completion}")
    report("chat", "v1", completion.model, decision=decision)


def chat_raw():
    """The same call read raw, for the gateway's headers, then parsed as usual."""
    decision = "sdk-chat-raw"
    raw = client.chat.completions.with_raw_response.create(
        model="v1", messages=MESSAGES, extra_headers={"Ascribe-Decision": decision}
    )
    check(raw.status_code == 200, f"{raw.status_code}")
    completion = raw.parse()
    check(isinstance(completion, ChatCompletion), f"{type(completion)}")
    check(completion.choices[0].message.role == "assistant", f"{completion}")
    headers = ascribe_headers(raw.headers)
    check(len(headers) == 3, f"all three Ascribe headers: {dict(raw.headers)}")
    report("chat.raw", "v1", completion.model, decision=decision, headers=headers)


def chat_stream():
    """A stream with usage in its last chunk, read raw for the headers."""
    decision = "sdk-chat-stream"
    raw = client.chat.completions.with_raw_response.create(
        model="v1",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"Ascribe-Decision": decision},
    )
    headers = ascribe_headers(raw.headers)
    stream = raw.parse()
    check(isinstance(stream, openai.Stream), f"{type(stream)}")
    chunks = list(stream)
    check(len(chunks) == 5, f"five chunks before [DONE], got {len(chunks)}")
    check(all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks), "chunk types")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(text == "<text> <text>", text)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    check(finish[-1] == "stop", f"{finish}")
    check(chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 68, "usage")
    models = {chunk.model for chunk in chunks}
    check(models == {"gpt-4o-mini-2024-07-18"}, f"{models}")
    report("chat.stream", "v1", chunks[0].model, decision=decision, headers=headers)


def chat_stream_plain():
    """A stream as most applications write it: iterate, print, done."""
    decision = "sdk-chat-stream-plain"
    stream = client.chat.completions.create(
        model="v1",
        messages=MESSAGES,
        stream=True,
        extra_headers={"Ascribe-Decision": decision},
    )
    text = ""
    model = None
    for chunk in stream:
        check(isinstance(chunk, ChatCompletionChunk), f"{type(chunk)}")
        model = chunk.model
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    check(text == "<text> <text>", text)
    report("chat.stream.plain", "v1", model, decision=decision)


def responses_plain():
    decision = "sdk-responses"
    raw = client.responses.with_raw_response.create(
        model="v1-responses",
        input="Which model answers this?",
        extra_headers={"Ascribe-Decision": decision},
    )
    response = raw.parse()
    check(isinstance(response, Response), f"{type(response)}")
    check(response.status == "completed", f"{response.status}")
    check(response.output_text == "<assistant text>", response.output_text)
    check(response.usage is not None and response.usage.total_tokens == 22, "usage")
    headers = ascribe_headers(raw.headers)
    report("responses", "v1-responses", response.model, decision=decision, headers=headers)


def responses_stream():
    decision = "sdk-responses-stream"
    raw = client.responses.with_raw_response.create(
        model="v1-responses",
        input="Which model answers this?",
        stream=True,
        extra_headers={"Ascribe-Decision": decision},
    )
    headers = ascribe_headers(raw.headers)
    events = list(raw.parse())
    check(isinstance(events[0], ResponseCreatedEvent), f"{type(events[0])}")
    check(isinstance(events[-1], ResponseCompletedEvent), f"{type(events[-1])}")
    deltas = [e.delta for e in events if isinstance(e, ResponseTextDeltaEvent)]
    check(deltas == ["<text>"], f"{deltas}")
    final = events[-1].response
    check(final.status == "completed", f"{final.status}")
    check(final.output_text == "<text>", final.output_text)
    sequence = [event.sequence_number for event in events]
    check(sequence == list(range(len(events))), f"{sequence}")
    report("responses.stream", "v1-responses", final.model, decision=decision, headers=headers)


def embeddings():
    decision = "sdk-embeddings"
    raw = client.embeddings.with_raw_response.create(
        model="v1-embeddings",
        input="an attributable sentence",
        encoding_format="float",
        extra_headers={"Ascribe-Decision": decision},
    )
    result = raw.parse()
    check(isinstance(result, CreateEmbeddingResponse), f"{type(result)}")
    check(result.data[0].embedding == [0.25, -0.5], f"{result.data[0].embedding}")
    check(result.usage.prompt_tokens == 2, f"{result.usage}")
    headers = ascribe_headers(raw.headers)
    report("embeddings", "v1-embeddings", result.model, decision=decision, headers=headers)


def models_list():
    models = list(client.models.list())
    check(all(isinstance(model, Model) for model in models), "model types")
    names = sorted(model.id for model in models)
    expected = sorted(["v1", "v1-responses", "v1-embeddings", "claude", "claude-overloaded"])
    check(names == expected, f"{names}")
    report("models.list", None, ",".join(names))


def unknown_model():
    try:
        client.chat.completions.create(model="no-such-alias", messages=MESSAGES)
    except openai.NotFoundError as error:
        check(error.status_code == 404, f"{error.status_code}")
        check("no-such-alias" in error.message, error.message)
        report("chat.unknown_model", "no-such-alias", error=type(error).__name__)
        return
    check(False, "an unknown model must raise NotFoundError")


def bad_key():
    stranger = openai.OpenAI(
        base_url=f"{GATEWAY}/v1", api_key="asc_not_a_key", max_retries=0, timeout=20
    )
    try:
        stranger.chat.completions.create(model="v1", messages=MESSAGES)
    except openai.AuthenticationError as error:
        check(error.status_code == 401, f"{error.status_code}")
        report("chat.bad_key", "v1", error=type(error).__name__)
        return
    check(False, "a bad key must raise AuthenticationError")


for call in (
    chat_plain,
    chat_raw,
    chat_stream,
    chat_stream_plain,
    responses_plain,
    responses_stream,
    embeddings,
    models_list,
    unknown_model,
    bad_key,
):
    call()
