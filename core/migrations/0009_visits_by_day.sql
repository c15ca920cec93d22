-- Schema 9: a day's visits (the tour screen's « visites du jour ») by the day entered on the
-- tablet, in order of time, without reading the others.
CREATE INDEX contact_by_day ON contact_index(local_day, at_secs, at_nanos, id);
