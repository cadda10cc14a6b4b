"""Speed and memory, always against an anchor measured in the same run, each measurement in a fresh subprocess
(``workers``): the speed table (``models``), our runtime against Model2Vec scenario by scenario (``runtime``),
distill time (``distill_time``) and bulk encoding / featurization at scale (``bulk``)."""
