"""Where corpora come from: streamed, resumable, checked downloads (`download`) and the seeded synthetic
stand-ins for TinyStories and OpenWebText that the embedded demo and the tests use (`synthetic`)."""
