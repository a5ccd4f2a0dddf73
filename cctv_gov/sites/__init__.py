"""Sites: the places with cameras; every grant, camera and segment belongs to one."""
