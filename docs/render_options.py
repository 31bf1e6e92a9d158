"""Print the option table of docs/configuration.md from the code.

    python docs/render_options.py

tests/test_lifecycle.py checks that every row printed here is in the page.
"""

from __future__ import annotations

from zembed._config import KernelConfig, option_names


def rows() -> list[str]:
    traits = KernelConfig.class_traits()
    return [
        f"| `{name}` | `{traits[name].default_value!r}` | `ZEMBED_{name.upper()}` | {traits[name].help} |"
        for name in option_names()
    ]


if __name__ == "__main__":
    print("| option | default | environment | what it does |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows()))
