"""cctv-ingest: the agent on each site's NVR box that hands recordings to the cctv-gov service.

It talks to the service over HTTP only and uses nothing outside the Python standard library.
"""

__version__ = "0.1.0"
