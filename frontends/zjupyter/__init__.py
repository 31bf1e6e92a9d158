"""zjupyter: zembed hosts in every Jupyter frontend.

A relay that serves a running host as a Jupyter kernel (``relay``),
kernelspecs for it and for hosts launched as kernels (``kernelspec``), and
JupyterLab / Notebook 7 started with every live host offered as a kernel
(``lab``).  Like zconsole, it is a frontend: it uses ``zembed.frontend``
only, and runs in processes of its own, never in a host.
"""

from __future__ import annotations

from zembed.frontend import __version__

__all__ = ["__version__"]
