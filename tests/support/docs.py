"""The README and docs/ as a test reads them: code blocks, the commands in them, links, headings' anchors."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from app import readme
from tests.support.servers import ROOT

DOCUMENTS = readme.documents()
FENCE = re.compile(r"^```(\S*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
ENVIRONMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    text: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]


@dataclass(frozen=True)
class Command:
    """One command of a shell block: its environment assignments, its words, and where it stands."""

    block: Block
    line: str
    environment: dict[str, str]
    words: list[str]

    @property
    def program(self) -> str:
        return self.words[0]

    def __str__(self) -> str:
        return f"{self.block}: {self.line}"

    def option(self, *names: str) -> str | None:
        """The value of the first of `names` given as an option (`-n X`, `--namespace=X`)."""
        for i, word in enumerate(self.words):
            for name in names:
                if word == name and i + 1 < len(self.words):
                    return self.words[i + 1]
                if word.startswith(f"{name}="):
                    return word.split("=", 1)[1]
        return None

    def positional(self) -> list[str]:
        """The words that are neither options nor their values (kubectl's flags all take a value but these)."""
        flags_without_value = {"--watch", "--json", "-fsS"}
        out, skip = [], False
        for word in self.words[1:]:
            if skip:
                skip = False
            elif word.startswith("-"):
                skip = "=" not in word and word not in flags_without_value
            else:
                out.append(word)
        return out


def without_code(text: str) -> str:
    """The prose: fenced blocks blanked out, so their lines keep their numbers."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def blocks(paths: list[Path] = DOCUMENTS) -> list[Block]:
    found = []
    for path in paths:
        text = path.read_text()
        for match in FENCE.finditer(text):
            found.append(Block(path, text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2)))
    return found


def commands(block: Block) -> list[Command]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    found = []
    for line in block.text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        environment = {}
        while words and ENVIRONMENT.match(words[0]):
            name, value = words.pop(0).split("=", 1)
            environment[name] = value
        found.append(Command(block, line.split(" #", 1)[0].strip(), environment, words))
    return found


def shell_commands(paths: list[Path] = DOCUMENTS) -> list[Command]:
    return [command for block in blocks(paths) if block.lang == "sh" for command in commands(block)]


def inline_code(path: Path) -> list[str]:
    return INLINE_CODE.findall(without_code(path.read_text()))


def links(path: Path) -> list[str]:
    return LINK.findall(without_code(path.read_text()))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces as `-`."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", without_code(path.read_text()), flags=re.MULTILINE)
    return {anchor(heading) for heading in headings}


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())
