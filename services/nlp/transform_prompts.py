"""How a text-to-text request becomes model input: the instruct model's chat
prompt per task, and the language names both kinds of model use."""

from __future__ import annotations

import re

from shared.errors import InvalidArgument

SUMMARIZE, TRANSLATE, REWRITE = "summarize", "translate", "rewrite"

LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")

# ISO 639-1 codes and the English names that prompts (and T5's prefixes) use.
LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian", "fi": "Finnish",
    "fr": "French", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian",
    "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip


def language_name(code: str, field: str) -> str:
    """English name of an ISO 639-1 code; INVALID_ARGUMENT naming ``field`` when malformed or unknown."""
    if not LANGUAGE_CODE.match(code):
        raise InvalidArgument(field, f"must be a two-letter ISO 639-1 code such as 'en', got {code!r}")
    name = LANGUAGE_NAMES.get(code)
    if name is None:
        raise InvalidArgument(field, f"language {code!r} is not one this service can name in a prompt")
    return name


def instruct_messages(task: str, text: str, instruction: str, source: str, target: str) -> list[dict[str, str]]:
    """Chat messages asking an instruct model to do ``task`` on ``text``.

    The text goes in its own block after the instruction, so an instruction
    hidden in the text is at least marked as data.
    """
    refine = f" {instruction.strip()}" if instruction.strip() else ""
    if task == SUMMARIZE:
        ask = "Summarize the following text."
        if target:
            ask += f" Write the summary in {language_name(target, 'target_language')}."
    elif task == TRANSLATE:
        origin = f" from {language_name(source, 'source_language')}" if source else ""
        ask = f"Translate the following text{origin} into {language_name(target, 'target_language')}."
    else:
        ask = "Rewrite the following text as asked."
        if target:
            ask += f" Write it in {language_name(target, 'target_language')}."
    system = "You transform texts exactly as asked. Answer with the resulting text only, without comments."
    user = f"{ask}{refine}\n\nText:\n{text}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
