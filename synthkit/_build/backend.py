"""The build backend: setuptools' own, with one fix for editable installs.

`pip install -e .` should put JupyterLab's settings file for this environment
(`share/jupyter/lab/settings/overrides.d/synthkit.json`: save widget state) where a plain
`jupyter lab` finds it. setuptools' editable wheel means to install data files "as non
editable", but asks the distribution for `has_data()`, which does not exist (the method is
`has_data_files()`), so it silently installs none. This module gives it that method and
otherwise is setuptools.build_meta.
"""
from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (the whole PEP 517/660 interface)
from setuptools.dist import Distribution

if not hasattr(Distribution, "has_data"):
    Distribution.has_data = Distribution.has_data_files


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
