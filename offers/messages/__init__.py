"""The words: message books (templates per incident kind, message kind, language and channel),
rendering a million texts as shells plus each customer's name and code, SMS segment budgets,
and marketing's previews.
"""

from offers.messages.book import (
    LANGUAGE_FALLBACK,
    MESSAGE_KINDS,
    MessageBook,
    MessageKind,
    Preview,
    Template,
    TemplateFinding,
    check_book,
    load_default_book,
    preview,
    sample_values,
    validate_book,
)
from offers.messages.rendering import render_texts

__all__ = [
    "LANGUAGE_FALLBACK",
    "MESSAGE_KINDS",
    "MessageBook",
    "MessageKind",
    "Preview",
    "Template",
    "TemplateFinding",
    "check_book",
    "load_default_book",
    "preview",
    "render_texts",
    "sample_values",
    "validate_book",
]
