"""What the data enters and leaves by: the readers (one per format), payload
decoding, the language gate at read, the sinks, and the checks on what mdfs
reads back (earlier runs' outputs, the output directory it writes)."""
