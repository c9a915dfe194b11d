"""The source tree view reads files by name and globs within bounds."""

from __future__ import annotations

from starforge_dag.railpack.source import SourceTree


def test_reads_are_cached_and_counted(make_app) -> None:
    app = SourceTree(make_app({"package.json": '{"name": "x"}'}))
    assert app.read_json("package.json") == {"name": "x"}
    assert app.read_json("package.json") == {"name": "x"}
    assert app.read_text("missing.txt") is None
    assert app.files_read == 1


def test_glob_patterns(make_app) -> None:
    app = SourceTree(
        make_app(
            {
                "apps/a/package.json": "",
                "apps/b/package.json": "",
                "apps/b/README": "",
                "libs/c/d/package.json": "",
                "x.csproj": "",
            }
        )
    )
    assert app.glob("apps/*/package.json") == ["apps/a/package.json", "apps/b/package.json"]
    assert app.glob("**/package.json") == ["apps/a/package.json", "apps/b/package.json", "libs/c/d/package.json"]
    assert app.glob("*.csproj") == ["x.csproj"]


def test_glob_skips_dependency_dirs_and_stops_at_the_cap(make_app) -> None:
    files = {"node_modules/dep/package.json": ""} | {f"pkgs/p{i:03}/package.json": "" for i in range(50)}
    app = SourceTree(make_app(files), max_glob_matches=10)
    found = app.glob("**/package.json")
    assert len(found) == 10
    assert not any(f.startswith("node_modules") for f in found)


def test_glob_depth_is_bounded(make_app) -> None:
    app = SourceTree(make_app({"a/b/c/d/e/package.json": ""}))
    assert app.glob("**/package.json", max_depth=3) == []
    assert app.glob("**/package.json", max_depth=5) == ["a/b/c/d/e/package.json"]


def test_malformed_manifests_read_as_none(make_app) -> None:
    app = SourceTree(make_app({"package.json": "{", "Cargo.toml": "[", "Staticfile": "a: [", "bin.dat": ""}))
    (app.root / "bin.dat").write_bytes(b"\xff\xfe\x00")
    assert app.read_json("package.json") is None
    assert app.read_toml("Cargo.toml") is None
    assert app.read_yaml("Staticfile") is None
    assert app.read_text("bin.dat") is None


def test_planning_never_walks_the_tree(make_app, monkeypatch) -> None:
    from starforge_dag.railpack import generate_plan

    files = {
        "package.json": '{"workspaces": ["packages/*"], "scripts": {"start": "node a.js"}}',
        "package-lock.json": "{}",
    }
    files |= {f"packages/p{i}/package.json": "{}" for i in range(5)}
    files |= {f"node_modules/dep{i}/index.js": "" for i in range(200)} | {f"docs/d{i}/page.md": "" for i in range(200)}
    root = make_app(files)

    def no_walk(*args, **kwargs):
        raise AssertionError("the planner must not walk the tree")

    monkeypatch.setattr("os.walk", no_walk)
    info = generate_plan(root).info
    assert info["filesRead"] <= 6, "the root manifest and the five workspace manifests"
    assert info["dirsListed"] <= 8, "the root, packages/ and each workspace package"
