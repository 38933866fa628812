"""The benchmark leaderboard: recipes, the runner, run records and reports.

scale-datasets bench list
scale-datasets bench run mnist-scale --data ms.h5 --out runs/ --device cuda
scale-datasets bench report runs/ --out board/
"""

from .recipes import Published, Recipe, get_recipe, list_recipes

__all__ = ["Published", "Recipe", "get_recipe", "list_recipes"]
