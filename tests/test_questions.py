"""Every bad answer is refused by copier.yml before a file is written, with a one-line message."""

import pytest
import yaml
from pytest_copie.plugin import Copie

from harness import TEMPLATE_ROOT

REFUSED = [
    ({"project_name": "  "}, "project_name must not be empty"),
    ({"project_name": 'Say "hi"'}, "project_name must not contain quotes"),
    (
        {"project_name": "東京サービス"},
        'project_slug is empty: "東京サービス" has no Latin letters',
    ),
    ({"project_slug": "My Service"}, 'project_slug "My Service" is invalid'),
    ({"project_slug": "-service"}, 'project_slug "-service" is invalid'),
    ({"package_name": "9lives"}, 'package_name "9lives" is not a valid Python identifier'),
    ({"package_name": "my-service"}, 'package_name "my-service" is not a valid Python identifier'),
    ({"package_name": "class"}, 'package_name "class" is a Python keyword'),
    ({"package_name": "async"}, 'package_name "async" is a Python keyword'),
    ({"package_name": "fastapi"}, 'package_name "fastapi" would shadow the module "fastapi"'),
    ({"package_name": "sqlmodel"}, 'package_name "sqlmodel" would shadow the module "sqlmodel"'),
    ({"package_name": "test"}, 'package_name "test" would shadow the module "test"'),
    ({"package_name": "logging"}, 'package_name "logging" would shadow the module "logging"'),
    ({"package_name": "MyService"}, 'package_name "MyService" should be lower case'),
    ({"description": 'a "quoted" word'}, "description must not contain double quotes"),
    ({"author_name": ""}, "author_name must not be empty"),
    ({"author_email": "not-an-email"}, 'author_email "not-an-email" is not a valid email'),
    ({"author_email": "a@b"}, 'author_email "a@b" is not a valid email'),
    ({"python_version": "3.9"}, "'3.9' is not in"),
    ({"database": "oracle"}, "'oracle' is not in"),
    ({"auth": "oauth"}, "'oauth' is not in"),
    ({"package_manager": "conda"}, "'conda' is not in"),
    ({"cors_origins": "*"}, 'cors_origins must not contain "*"'),
    ({"cors_origins": "http://ok.example, https://a.example/"}, 'entry "https://a.example/" is'),
    ({"cors_origins": "localhost:3000"}, 'entry "localhost:3000" is invalid'),
    ({"ci": "gitlab"}, "'gitlab' is not in"),
]


def _case_id(answers: dict[str, object]) -> str:
    return ",".join(f"{name}={value!r}" for name, value in answers.items())


@pytest.mark.parametrize(("answers", "message"), REFUSED, ids=[_case_id(a) for a, _ in REFUSED])
def test_a_bad_answer_is_refused_before_anything_is_written(
    copie: Copie, answers: dict[str, object], message: str
) -> None:
    result = copie.copy(extra_answers=answers)
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError)
    assert message in str(result.exception)
    assert "\n" not in str(result.exception).strip(), "the message must be one line"
    assert not any(copie.test_dir.rglob("*.py")), "nothing may be rendered"


@pytest.mark.parametrize(
    "answers",
    [
        {"project_name": "Billing API"},
        {"package_name": "billing_api", "project_slug": "billing-api"},
        {"cors_origins": ""},
        {"cors_origins": "https://app.example.com,http://localhost:8080"},
        {"python_version": "3.13"},
        {"auth": "api_key"},
        {"auth": "none"},
    ],
)
def test_good_answers_render(copie: Copie, answers: dict[str, object]) -> None:
    result = copie.copy(extra_answers=answers)
    assert result.exit_code == 0, result.exception
    assert result.project_dir is not None
    assert (result.project_dir / "pyproject.toml").is_file()


@pytest.mark.parametrize(
    ("project_name", "slug"),
    [
        ("Billing & Payments API", "billing-payments-api"),
        ("Ünïcode Sérvice", "unicode-service"),
        ("U\u0308ber Café", "uber-cafe"),  # decomposed: a combining accent after the letter
        ("Straße Łódź", "strasse-lodz"),
        ("Ærøskøbing ﬁles", "aeroskobing-files"),
        ("Þór Smiðja", "thor-smidja"),
        ("Café 東京 API", "cafe-api"),
    ],
)
def test_names_are_derived_from_the_project_name(
    copie: Copie, project_name: str, slug: str
) -> None:
    result = copie.copy(extra_answers={"project_name": project_name})
    assert result.exit_code == 0, result.exception
    package = slug.replace("-", "_")
    assert result.answers["project_slug"] == slug
    assert result.answers["package_name"] == package
    assert result.project_dir is not None
    assert (result.project_dir / "src" / package / "main.py").is_file()
    # The name itself keeps its accents where it is shown.
    assert (result.project_dir / "README.md").read_text().startswith(f"# {project_name}\n")


def test_every_question_has_help_a_default_and_a_check() -> None:
    questions = {
        name: spec
        for name, spec in yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text()).items()
        if not name.startswith("_") and spec.get("when") is not False
    }
    assert set(questions) >= {
        "project_name", "project_slug", "package_name", "description", "author_name",
        "author_email", "python_version", "database", "auth", "package_manager",
        "cors_origins", "docker", "ci",
    }  # fmt: skip
    for name, spec in questions.items():
        assert spec.get("help"), f"{name} has no help"
        assert "default" in spec, f"{name} has no default"
        assert spec.get("type") == "bool" or "validator" in spec or "choices" in spec, name
