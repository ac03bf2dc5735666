"""Pieces the fixture generators share."""


def byte_vocab():
    """GPT-2's byte-to-unicode table: 256 printable stand-ins for the 256 byte values, the base
    vocabulary of every byte-level BPE tokenizer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, (chr(c) for c in cs)))
    return [table[b] for b in range(256)]


def finish(writer):
    """Writes a gguf.GGUFWriter's header, metadata and tensors, and closes it."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
