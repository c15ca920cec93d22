-- Repère sync server, schema 5: authorship bound to the enrolled device (issue 9).

-- The writer id the enrolled store named (protocol 3): the device part of every Automerge
-- actor it writes with. New changes pushed by this device must carry it. NULL for devices
-- enrolled by an older app, which may not use a writer id bound to another device.
ALTER TABLE devices ADD COLUMN writer BLOB;
CREATE INDEX devices_writer ON devices (writer);
