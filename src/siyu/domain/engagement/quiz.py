"""Quiz for points (答题领积分), pure: questions with one right option each, points per right answer, one attempt
per person per quiz per local day (the service enforces the "once a day" with a unique key)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from siyu.domain.engagement.common import DEFAULT_TZ, Model, first_error, zone
from siyu.errors import SiyuError


class Question(Model):
    """A question: ``options`` to choose from and the index of the right one (``answer``)."""

    id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    text: str = Field(min_length=1, max_length=500)
    options: list[str] = Field(min_length=2, max_length=8)
    answer: int = Field(ge=0)

    @model_validator(mode="after")
    def _check(self) -> Question:
        if self.answer >= len(self.options):
            raise ValueError(f"answer: {self.answer} is not an option; options are numbered 0-{len(self.options) - 1}")
        return self


class QuizConfig(Model):
    """A quiz: its questions, points per right answer and how long the points stay valid."""

    questions: list[Question] = Field(min_length=1, max_length=50)
    points_per_correct: int = Field(ge=1, le=10_000)
    points_valid_days: int = Field(default=365, ge=1, le=3650)
    timezone: str = DEFAULT_TZ

    @model_validator(mode="after")
    def _check(self) -> QuizConfig:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("questions: each question needs its own id")
        return self


def parse_quiz(data: dict[str, Any]) -> QuizConfig:
    """Validate a quiz config; errors name the field."""
    try:
        cfg = QuizConfig.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc) from None
    zone(cfg.timezone)
    return cfg


def public_questions(config: QuizConfig) -> list[dict[str, Any]]:
    """The questions without their answers (what a participant sees)."""
    return [{"id": q.id, "text": q.text, "options": q.options} for q in config.questions]


def score(config: QuizConfig, answers: dict[str, int]) -> tuple[int, int]:
    """(right answers, points) for ``answers`` {question id: chosen option}; unknown ids or options are errors,
    unanswered questions count as wrong."""
    by_id = {q.id: q for q in config.questions}
    for qid, choice in answers.items():
        if qid not in by_id:
            raise SiyuError(f"answers.{qid}: no such question in this quiz", f"answers.{qid}")
        if not isinstance(choice, int) or isinstance(choice, bool) or not 0 <= choice < len(by_id[qid].options):
            raise SiyuError(f"answers.{qid}: choose an option number 0-{len(by_id[qid].options) - 1}", f"answers.{qid}")
    correct = sum(1 for qid, choice in answers.items() if by_id[qid].answer == choice)
    return correct, correct * config.points_per_correct
