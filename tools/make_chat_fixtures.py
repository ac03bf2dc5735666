#!/usr/bin/env python3
"""Records the prompt text llama.cpp builds for a few conversations in each chat format that
swift-moe renders, into Tests/Fixtures/text/chat-templates.json.

llama.cpp's built-in formatter (llama_chat_apply_template, selected by format name) gives the
reference for every format but `tulu`: llama.cpp's non-Jinja detector maps the Tulu/OLMoE
template to GLM-Edge, and only its Jinja path follows the template, so for `tulu` the
reference is the Tulu template rendered by jinja2 (what `llama-cli --jinja` renders).

Usage: python3 tools/make_chat_fixtures.py   (needs llama-cpp-python and jinja2)
"""
import ctypes
import json
import os

import jinja2
import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "text", "chat-templates.json")

FORMATS = ["chatml", "llama3", "mistral-v1", "mistral-v3", "mistral-v3-tekken", "mistral-v7", "llama2-sys",
           "zephyr", "phi3", "deepseek", "deepseek2", "deepseek3", "gemma"]

CONVERSATIONS = [
    [("user", "Hello!")],
    [("system", "You are terse."), ("user", "Name a prime."), ("assistant", " 7 "), ("user", "Another?")],
    [("user", "  spaces around  "), ("assistant", "Sure.\n"), ("user", "Line one\nline two")],
]

# The Tulu template (allenai/open-instruct), which OLMoE-Instruct uses.
TULU = ("{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\\n' + message['content'] + '\\n' }}"
        "{% elif message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + '\\n' }}"
        "{% elif message['role'] == 'assistant' %}{% if not loop.last %}{{ '<|assistant|>\\n'  + message['content'] + eos_token + '\\n' }}"
        "{% else %}{{ '<|assistant|>\\n'  + message['content'] + eos_token }}{% endif %}{% endif %}"
        "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}{% endfor %}")


def llama_render(fmt, conv, add_ass):
    msgs = (llama_cpp.llama_chat_message * len(conv))()
    keep = []
    for i, (role, content) in enumerate(conv):
        r, c = role.encode(), content.encode()
        keep += [r, c]
        msgs[i].role = r
        msgs[i].content = c
    buf = ctypes.create_string_buffer(1 << 16)
    n = llama_cpp.llama_chat_apply_template(fmt.encode(), msgs, len(conv), add_ass, buf, len(buf))
    if n < 0:
        raise RuntimeError(f"{fmt}: llama_chat_apply_template returned {n}")
    return buf.raw[:n].decode()


def main():
    cases = []
    for fmt in FORMATS:
        for conv in CONVERSATIONS:
            for add_ass in (True, False):
                cases.append({"format": fmt, "messages": [list(m) for m in conv], "add_assistant": add_ass,
                              "text": llama_render(fmt, conv, add_ass), "source": "llama_chat_apply_template"})
    env = jinja2.Environment()
    tulu = env.from_string(TULU)
    for conv in CONVERSATIONS:
        for add_ass in (True, False):
            text = tulu.render(messages=[{"role": r, "content": c} for r, c in conv], add_generation_prompt=add_ass,
                               eos_token="<|endoftext|>")
            cases.append({"format": "tulu", "messages": [list(m) for m in conv], "add_assistant": add_ass, "eos": "<|endoftext|>",
                          "text": text, "source": "jinja2 (Tulu template)"})
    with open(OUT, "w") as f:
        json.dump({"llama_cpp_python": llama_cpp.__version__, "tulu_template": TULU, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases -> {OUT}")


if __name__ == "__main__":
    main()
