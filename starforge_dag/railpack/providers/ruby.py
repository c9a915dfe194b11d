"""Ruby apps: Bundler, Rails and Rack."""

from __future__ import annotations

import re

from starforge_dag.railpack.providers.base import Context, ProviderPlan, StepLayoutProvider, build_layer, copy, sh

DEFAULT_RUBY_VERSION = "3.4.6"
RUNTIME_VARIABLES = {
    "BUNDLE_GEMFILE": "/app/Gemfile",
    "GEM_PATH": "/usr/local/bundle",
    "GEM_HOME": "/usr/local/bundle",
    "MALLOC_ARENA_MAX": "2",
}
# Gems that need system libraries at build time.
GEM_APT = {
    "pg": "libpq-dev",
    "mysql2": "default-libmysqlclient-dev",
    "rmagick": "imagemagick",
    "mini_magick": "imagemagick",
    "ruby-vips": "libvips-dev",
    "charlock_holmes": "libicu-dev",
}


class RubyProvider(StepLayoutProvider):
    """Apps with a Gemfile."""

    name = "ruby"
    looked_for = "Gemfile"

    def detect_app(self, ctx: Context) -> bool:
        """A Gemfile at the root."""
        return ctx.app.has_file("Gemfile")

    def start_command_help(self) -> str:
        """Ruby's ways to name a start command."""
        return "add config/application.rb (Rails), config.ru (Rack) or a Rakefile"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """bundle install, precompile Rails assets, start Rails, Rack or rake."""
        gemfile = ctx.app.read_text("Gemfile") or ""
        lock = ctx.app.read_text("Gemfile.lock") or ""
        gem_match = re.search(r"""(?m)^\s*ruby\s+['"]([^'"]+)['"]""", gemfile)
        version = ctx.resolve(
            "ruby",
            DEFAULT_RUBY_VERSION,
            ctx.env_version("ruby"),
            ctx.version_file(".ruby-version"),
            (gem_match.group(1).lstrip("~>= ") if gem_match else None, "Gemfile"),
            ctx.mise_version("ruby"),
        )
        gems = set(re.findall(r"""(?m)^\s*gem\s+['"]([\w-]+)['"]""", gemfile)) | set(
            re.findall(r"(?m)^    ([\w-]+) \(", lock)
        )
        plan = ProviderPlan(
            packages={"ruby": version}, variables=dict(RUNTIME_VARIABLES), deploy_variables=dict(RUNTIME_VARIABLES)
        )
        plan.build_apt = sorted({apt for gem, apt in GEM_APT.items() if gem in gems})
        files = [f for f in ("Gemfile", "Gemfile.lock") if ctx.app.has_file(f)]
        plan.install = [*copy(*files), sh("bundle install")]
        if ctx.app.has_file("package.json"):
            plan.packages["node"] = ctx.resolve("node", "22", ctx.env_version("node"), ctx.version_file(".nvmrc"))
        rails = ctx.app.has_file("config/application.rb")
        if rails:
            ctx.metadata["framework"] = "rails"
            if ctx.app.has_dir("app/assets") or gems & {"sprockets", "propshaft", "sprockets-rails"}:
                plan.build.append(sh("bundle exec rake assets:precompile"))
            if "bootsnap" in gems:
                plan.build.append(sh("bundle exec bootsnap precompile --gemfile app/ lib/"))
        plan.start_command = _start_command(ctx, rails)
        plan.deploy_inputs = [build_layer("."), build_layer("/usr/local/bundle")]
        return plan


def _start_command(ctx: Context, rails: bool) -> str | None:
    if rails:
        migrate = "bundle exec rails db:prepare && " if ctx.app.has_dir("db") else ""
        return f"{migrate}bundle exec rails server -b 0.0.0.0 -p ${{PORT:-3000}}"
    if ctx.app.has_file("config/environment.rb"):
        return "bundle exec ruby script/server -p ${PORT:-3000}"
    if ctx.app.has_file("config.ru"):
        ctx.metadata["framework"] = "rack"
        return "bundle exec rackup config.ru -o 0.0.0.0 -p ${PORT:-3000}"
    if ctx.app.has_file("Rakefile"):
        return "bundle exec rake"
    return None
