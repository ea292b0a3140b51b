"""Rendering for people: terminal tables now; JSON, Markdown and HTML reports come with `compare`."""
