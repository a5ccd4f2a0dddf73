"""cctv-ingest: the agent on each site's NVR box that hands recordings to the cctv-gov service.

It talks to the service over HTTP only and needs nothing but the Python standard library and
``cryptography`` (AES-256-GCM, for encrypting footage before it leaves the NVR).
"""

__version__ = "0.1.0"
