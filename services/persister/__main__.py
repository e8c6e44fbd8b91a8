import sys

from services.persister.service import main

sys.exit(main())
