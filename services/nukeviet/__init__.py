"""Back-end pieces of the NukeViet integration that run beside the portal (see docs/nukeviet.md)."""
