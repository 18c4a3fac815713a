"""IEC 61850 (MMS): the fleet as one virtual DER IED that utility SCADA reads and commands, and its SCADA client."""
