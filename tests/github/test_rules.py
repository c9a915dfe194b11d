import pytest

from starforge_dag.core.models import App
from starforge_dag.github.push import Commit, PushEvent, Repository
from starforge_dag.github.rules import decide, watched

SHA = "a" * 40
REPO = Repository(full_name="acme/shop")


def app(**overrides) -> App:
    fields = dict(id=1, workspace="acme", name="shop", repo_url="https://github.com/acme/shop.git", branch="main")
    return App(**{**fields, **overrides})


def push(*commits: Commit, ref: str = "refs/heads/main") -> PushEvent:
    listed = list(commits) or [Commit(id=SHA, message="Update", modified=["app.py"])]
    return PushEvent(
        ref=ref, after=SHA, repository=Repository(full_name="acme/shop"), commits=listed, head_commit=listed[-1]
    )


def change(*paths: str, message: str = "Update") -> Commit:
    return Commit(id=SHA, message=message, modified=list(paths))


def test_push_to_tracked_branch_builds() -> None:
    decision = decide(app(), push())
    assert decision.build and "main" in decision.reason


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (push(ref="refs/heads/feature/x"), "branch feature/x is not tracked"),
        (push(ref="refs/tags/v1"), "tag push"),
        (push(ref="refs/pull/1/head"), "not a branch"),
        (PushEvent(ref="refs/heads/main", after="0" * 40, deleted=True, repository=REPO), "deleted"),
    ],
)
def test_refs_that_do_not_build(event: PushEvent, reason: str) -> None:
    decision = decide(app(), event)
    assert not decision.build and reason in decision.reason


@pytest.mark.parametrize(
    "message",
    [
        "Fix typo [skip ci]",
        "[CI SKIP] docs",
        "wip [no ci]",
        "[skip actions]",
        "[actions skip]",
        "Tweak [skip deploy]",
        "Docs only\n\n\nskip-checks: true",
    ],
)
def test_skip_markers_when_every_commit_has_one(message: str) -> None:
    decision = decide(app(), push(change("app.py", message=message), change("app.py", message="more [skip ci]")))
    assert not decision.build and "skip" in decision.reason


def test_one_commit_without_skip_marker_builds() -> None:
    assert decide(app(), push(change("app.py", message="[skip ci] docs"), change("app.py", message="real fix"))).build


def test_skip_trailer_must_be_true() -> None:
    assert decide(app(), push(change("app.py", message="Docs\n\nskip-checks: false"))).build


def test_watch_paths_miss_and_hit() -> None:
    watching = app(watch_paths=["services/api/**", "shared/*.py"])
    miss = decide(watching, push(change("docs/readme.md"), change("shared/sub/x.py")))
    assert not miss.build and "watch paths" in miss.reason
    assert decide(watching, push(change("docs/readme.md"), change("services/api/src/main.py"))).build
    assert decide(watching, push(change("shared/util.py"))).build


def test_removed_files_count_as_changes() -> None:
    watching = app(watch_paths=["services/api"])
    assert decide(watching, push(Commit(id=SHA, message="rm", removed=["services/api/old.py"]))).build


def test_root_dir_is_the_implicit_watch_path() -> None:
    api = app(root_dir="services/api")
    assert not decide(api, push(change("services/web/index.html"))).build
    assert decide(api, push(change("services/api/main.py"))).build
    assert decide(app(root_dir="services/api", watch_paths=["shared/**"]), push(change("shared/x.py"))).build


def test_no_watch_paths_and_no_root_dir_builds_everything() -> None:
    assert decide(app(), push(change("anything/at/all.txt"))).build


def test_unknown_changes_build_rather_than_miss() -> None:
    created = PushEvent(
        ref="refs/heads/main", after=SHA, created=True, repository=Repository(full_name="acme/shop"), commits=[]
    )
    assert decide(app(watch_paths=["services/api/**"]), created).build


@pytest.mark.parametrize(
    ("path", "patterns", "expected"),
    [
        ("README.md", ["**/*.md"], True),
        ("docs/a/b.md", ["**/*.md"], True),
        ("docs/a/b.md", ["*.md"], False),
        ("src/app.py", ["/src/"], True),
        ("src/app.py", ["./src"], True),
        ("srcfoo/app.py", ["src"], False),
        ("src/a/b/c.py", ["src/**/c.py"], True),
        ("src/c.py", ["src/**/c.py"], True),
        ("src/app.py", ["src/**", "!src/*.md"], True),
        ("src/notes.md", ["src/**", "!src/*.md"], False),
        ("src/notes.md", ["!src/*.md", "src/**"], True),
        ("src/v1.py", ["src/v[0-9].py"], True),
        ("src/vx.py", ["src/v[0-9].py"], False),
        ("a/b", ["a?b"], False),
        ("anything", ["/"], True),
    ],
)
def test_watch_path_globs(path: str, patterns: list[str], expected: bool) -> None:
    assert watched(path, patterns) is expected
