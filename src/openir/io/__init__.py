"""Readers and writers: DICOM series (incl. compressed), NIfTI, NRRD, DICOM SEG, RTSTRUCT, Slicer
markups. Everything returned is in LPS millimetres with arrays ``[k, j, i]``; bad files raise
`openir.core.errors.InputError` naming the file and the problem."""

from .dicom_seg import read_dicom_seg, read_dicom_seg_masks, write_dicom_seg, write_dicom_seg_masks
from .dicom_series import read_dicom_datasets, read_dicom_series, series_grid, write_dicom_series
from .dispatch import detect, read_image, read_labels
from .frames import frame_mismatch, require_same_frame
from .info import describe, render_info
from .label_names import load_label_names
from .markups import markups_document, read_markups, write_markups
from .models import FileInfo, LabelInfo, LineMarkup, MarkupsFile, PointSet, SeriesInfo
from .nifti import read_nifti, read_nifti_labels, write_nifti, write_nifti_series
from .nrrd_io import read_nrrd, read_nrrd_labels, write_nrrd
from .rtdose import write_rt_dose
from .rtstruct import read_rtstruct, roi_names
from .segments import (
    read_segmentation_nrrd,
    read_segments_nifti,
    write_rtstruct,
    write_segmentation_nrrd,
    write_segments_nifti,
    write_vtk_surface,
)

__all__ = [
    "FileInfo",
    "LabelInfo",
    "LineMarkup",
    "MarkupsFile",
    "PointSet",
    "SeriesInfo",
    "describe",
    "frame_mismatch",
    "detect",
    "load_label_names",
    "markups_document",
    "read_dicom_datasets",
    "read_dicom_seg",
    "read_dicom_seg_masks",
    "read_dicom_series",
    "read_image",
    "read_labels",
    "read_markups",
    "read_nifti",
    "read_nifti_labels",
    "read_nrrd",
    "read_nrrd_labels",
    "read_rtstruct",
    "read_segmentation_nrrd",
    "read_segments_nifti",
    "render_info",
    "require_same_frame",
    "roi_names",
    "series_grid",
    "write_dicom_seg",
    "write_dicom_seg_masks",
    "write_rt_dose",
    "write_rtstruct",
    "write_segmentation_nrrd",
    "write_segments_nifti",
    "write_vtk_surface",
    "write_dicom_series",
    "write_markups",
    "write_nifti",
    "write_nifti_series",
    "write_nrrd",
]
