"""The rehearsal (`make rehearse`): the whole lifecycle from an empty, emulated account. See __main__.py."""
