"""Request plumbing shared by the JSON API and the pages: context, unit of work, errors, files."""
