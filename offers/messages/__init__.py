"""The words: message books (templates per incident kind, message kind, language and channel),
rendering a million texts as shells plus each customer's name and code, SMS segment budgets,
marketing's previews,
and books per incident kind with their checks and diffs.
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
from offers.messages.books import (
    BOOK_NAMES,
    GENERIC,
    BookChange,
    book_findings,
    book_incident,
    decode_book,
    diff_books,
    dump_book,
    merge_books,
    split_book,
)
from offers.messages.placeholders import TemplateError
from offers.messages.rendering import render_texts

__all__ = [
    "BOOK_NAMES",
    "GENERIC",
    "LANGUAGE_FALLBACK",
    "MESSAGE_KINDS",
    "BookChange",
    "MessageBook",
    "MessageKind",
    "Preview",
    "Template",
    "TemplateError",
    "TemplateFinding",
    "book_findings",
    "book_incident",
    "check_book",
    "decode_book",
    "diff_books",
    "dump_book",
    "load_default_book",
    "merge_books",
    "preview",
    "render_texts",
    "sample_values",
    "split_book",
    "validate_book",
]
